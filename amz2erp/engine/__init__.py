"""The engine: the run (runtime), the window and cursor arithmetic, and the writers that move Amazon records
into ERPNext exactly once (orders, products, backfill, retry, settlements)."""
