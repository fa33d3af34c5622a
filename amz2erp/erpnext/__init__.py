"""The ERPNext access layer: the REST client, the schema facts amz2erp relies on, the `check` command's
checks and the `setup` command's plan/apply."""
