"""Master data a fresh ERPNext v15 company has (seeded by the simulator when ``seed_masters``)."""

from __future__ import annotations

# (name, ISO alpha-2 lower case as ERPNext stores it)
COUNTRIES: list[tuple[str, str]] = [
    ("Argentina", "ar"), ("Australia", "au"), ("Austria", "at"), ("Belgium", "be"), ("Brazil", "br"),
    ("Canada", "ca"), ("Chile", "cl"), ("China", "cn"), ("Colombia", "co"), ("Czech Republic", "cz"),
    ("Denmark", "dk"), ("Egypt", "eg"), ("Finland", "fi"), ("France", "fr"), ("Germany", "de"),
    ("Greece", "gr"), ("Hong Kong", "hk"), ("Hungary", "hu"), ("India", "in"), ("Indonesia", "id"),
    ("Ireland", "ie"), ("Israel", "il"), ("Italy", "it"), ("Japan", "jp"), ("Luxembourg", "lu"),
    ("Malaysia", "my"), ("Mexico", "mx"), ("Netherlands", "nl"), ("New Zealand", "nz"), ("Norway", "no"),
    ("Philippines", "ph"), ("Poland", "pl"), ("Portugal", "pt"), ("Romania", "ro"), ("Saudi Arabia", "sa"),
    ("Singapore", "sg"), ("South Africa", "za"), ("South Korea", "kr"), ("Spain", "es"), ("Sweden", "se"),
    ("Switzerland", "ch"), ("Taiwan", "tw"), ("Thailand", "th"), ("Turkey", "tr"), ("Ukraine", "ua"),
    ("United Arab Emirates", "ae"), ("United Kingdom", "gb"), ("United States", "us"), ("Vietnam", "vn"),
]

# (code, symbol, fraction, fraction_units, smallest_currency_fraction_value)
CURRENCIES: list[tuple[str, str, str, int, float]] = [
    ("AED", "د.إ", "Fils", 100, 0.01), ("AUD", "$", "Cent", 100, 0.01), ("BRL", "R$", "Centavo", 100, 0.01),
    ("CAD", "$", "Cent", 100, 0.01), ("CHF", "Fr", "Rappen", 100, 0.01), ("CNY", "¥", "Fen", 100, 0.01),
    ("CZK", "Kč", "Haléř", 100, 0.01), ("DKK", "kr", "Øre", 100, 0.01), ("EGP", "E£", "Piastre", 100, 0.01),
    ("EUR", "€", "Cent", 100, 0.01), ("GBP", "£", "Penny", 100, 0.01), ("INR", "₹", "Paisa", 100, 0.01),
    ("JPY", "¥", "Sen", 100, 0.0), ("MXN", "$", "Centavo", 100, 0.01), ("NOK", "kr", "Øre", 100, 0.01),
    ("PLN", "zł", "Grosz", 100, 0.01), ("SAR", "ر.س", "Halala", 100, 0.01), ("SEK", "kr", "Öre", 100, 0.01),
    ("SGD", "$", "Cent", 100, 0.01), ("TRY", "₺", "Kuruş", 100, 0.01), ("USD", "$", "Cent", 100, 0.01),
]

# Standard chart of accounts: (account_name, parent account_name or None, is_group, root_type, account_type)
ACCOUNTS: list[tuple[str, str | None, int, str, str]] = [
    ("Application of Funds (Assets)", None, 1, "Asset", ""),
    ("Current Assets", "Application of Funds (Assets)", 1, "Asset", ""),
    ("Accounts Receivable", "Current Assets", 1, "Asset", ""),
    ("Debtors", "Accounts Receivable", 0, "Asset", "Receivable"),
    ("Bank Accounts", "Current Assets", 1, "Asset", "Bank"),
    ("Cash In Hand", "Current Assets", 1, "Asset", "Cash"),
    ("Cash", "Cash In Hand", 0, "Asset", "Cash"),
    ("Loans and Advances (Assets)", "Current Assets", 1, "Asset", ""),
    ("Employee Advances", "Loans and Advances (Assets)", 0, "Asset", ""),
    ("Securities and Deposits", "Current Assets", 1, "Asset", ""),
    ("Earnest Money", "Securities and Deposits", 0, "Asset", ""),
    ("Stock Assets", "Current Assets", 1, "Asset", "Stock"),
    ("Stock In Hand", "Stock Assets", 0, "Asset", "Stock"),
    ("Tax Assets", "Current Assets", 1, "Asset", ""),
    ("Fixed Assets", "Application of Funds (Assets)", 1, "Asset", ""),
    ("Accumulated Depreciation", "Fixed Assets", 0, "Asset", "Accumulated Depreciation"),
    ("Buildings", "Fixed Assets", 0, "Asset", "Fixed Asset"),
    ("Capital Equipment", "Fixed Assets", 0, "Asset", "Fixed Asset"),
    ("CWIP Account", "Fixed Assets", 0, "Asset", "Capital Work in Progress"),
    ("Electronic Equipment", "Fixed Assets", 0, "Asset", "Fixed Asset"),
    ("Furniture and Fixtures", "Fixed Assets", 0, "Asset", "Fixed Asset"),
    ("Office Equipment", "Fixed Assets", 0, "Asset", "Fixed Asset"),
    ("Plants and Machineries", "Fixed Assets", 0, "Asset", "Fixed Asset"),
    ("Software", "Fixed Assets", 0, "Asset", "Fixed Asset"),
    ("Investments", "Application of Funds (Assets)", 1, "Asset", ""),
    ("Temporary Accounts", "Application of Funds (Assets)", 1, "Asset", ""),
    ("Temporary Opening", "Temporary Accounts", 0, "Asset", "Temporary"),
    ("Expenses", None, 1, "Expense", ""),
    ("Direct Expenses", "Expenses", 1, "Expense", ""),
    ("Stock Expenses", "Direct Expenses", 1, "Expense", ""),
    ("Cost of Goods Sold", "Stock Expenses", 0, "Expense", "Cost of Goods Sold"),
    ("Expenses Included In Asset Valuation", "Stock Expenses", 0, "Expense", "Expenses Included In Asset Valuation"),
    ("Expenses Included In Valuation", "Stock Expenses", 0, "Expense", "Expenses Included In Valuation"),
    ("Stock Adjustment", "Stock Expenses", 0, "Expense", "Stock Adjustment"),
    ("Indirect Expenses", "Expenses", 1, "Expense", ""),
    ("Administrative Expenses", "Indirect Expenses", 0, "Expense", ""),
    ("Commission on Sales", "Indirect Expenses", 0, "Expense", ""),
    ("Depreciation", "Indirect Expenses", 0, "Expense", "Depreciation"),
    ("Entertainment Expenses", "Indirect Expenses", 0, "Expense", ""),
    ("Exchange Gain/Loss", "Indirect Expenses", 0, "Expense", ""),
    ("Freight and Forwarding Charges", "Indirect Expenses", 0, "Expense", "Chargeable"),
    ("Gain/Loss on Asset Disposal", "Indirect Expenses", 0, "Expense", ""),
    ("Impairment", "Indirect Expenses", 0, "Expense", ""),
    ("Legal Expenses", "Indirect Expenses", 0, "Expense", ""),
    ("Marketing Expenses", "Indirect Expenses", 0, "Expense", "Chargeable"),
    ("Miscellaneous Expenses", "Indirect Expenses", 0, "Expense", "Chargeable"),
    ("Office Maintenance Expenses", "Indirect Expenses", 0, "Expense", ""),
    ("Office Rent", "Indirect Expenses", 0, "Expense", ""),
    ("Postal Expenses", "Indirect Expenses", 0, "Expense", ""),
    ("Print and Stationery", "Indirect Expenses", 0, "Expense", ""),
    ("Round Off", "Indirect Expenses", 0, "Expense", "Round Off"),
    ("Salary", "Indirect Expenses", 0, "Expense", ""),
    ("Sales Expenses", "Indirect Expenses", 0, "Expense", ""),
    ("Telephone Expenses", "Indirect Expenses", 0, "Expense", ""),
    ("Travel Expenses", "Indirect Expenses", 0, "Expense", ""),
    ("Utility Expenses", "Indirect Expenses", 0, "Expense", ""),
    ("Write Off", "Indirect Expenses", 0, "Expense", ""),
    ("Income", None, 1, "Income", ""),
    ("Direct Income", "Income", 1, "Income", ""),
    ("Sales", "Direct Income", 0, "Income", ""),
    ("Service", "Direct Income", 0, "Income", ""),
    ("Indirect Income", "Income", 1, "Income", ""),
    ("Source of Funds (Liabilities)", None, 1, "Liability", ""),
    ("Current Liabilities", "Source of Funds (Liabilities)", 1, "Liability", ""),
    ("Accounts Payable", "Current Liabilities", 1, "Liability", ""),
    ("Creditors", "Accounts Payable", 0, "Liability", "Payable"),
    ("Payroll Payable", "Accounts Payable", 0, "Liability", ""),
    ("Duties and Taxes", "Current Liabilities", 1, "Liability", "Tax"),
    ("Stock Liabilities", "Current Liabilities", 1, "Liability", ""),
    ("Asset Received But Not Billed", "Stock Liabilities", 0, "Liability", "Asset Received But Not Billed"),
    ("Stock Received But Not Billed", "Stock Liabilities", 0, "Liability", "Stock Received But Not Billed"),
    ("Loans (Liabilities)", "Source of Funds (Liabilities)", 1, "Liability", ""),
    ("Bank Overdraft Account", "Loans (Liabilities)", 0, "Liability", ""),
    ("Secured Loans", "Loans (Liabilities)", 0, "Liability", ""),
    ("Unsecured Loans", "Loans (Liabilities)", 0, "Liability", ""),
    ("Equity", None, 1, "Equity", ""),
    ("Capital Stock", "Equity", 0, "Equity", "Equity"),
    ("Dividends Paid", "Equity", 0, "Equity", "Equity"),
    ("Opening Balance Equity", "Equity", 0, "Equity", "Equity"),
    ("Retained Earnings", "Equity", 0, "Equity", "Equity"),
    ("Revaluation Surplus", "Equity", 0, "Equity", "Equity"),
]

# (warehouse_name, is_group, parent warehouse_name)
WAREHOUSES: list[tuple[str, int, str | None]] = [
    ("All Warehouses", 1, None),
    ("Finished Goods", 0, "All Warehouses"),
    ("Goods In Transit", 0, "All Warehouses"),
    ("Stores", 0, "All Warehouses"),
    ("Work In Progress", 0, "All Warehouses"),
]

ITEM_GROUPS: list[tuple[str, int, str]] = [
    ("All Item Groups", 1, ""),
    ("Consumable", 0, "All Item Groups"),
    ("Products", 0, "All Item Groups"),
    ("Raw Material", 0, "All Item Groups"),
    ("Services", 0, "All Item Groups"),
    ("Sub Assemblies", 0, "All Item Groups"),
]

CUSTOMER_GROUPS: list[tuple[str, int, str]] = [
    ("All Customer Groups", 1, ""),
    ("Commercial", 0, "All Customer Groups"),
    ("Government", 0, "All Customer Groups"),
    ("Individual", 0, "All Customer Groups"),
    ("Non Profit", 0, "All Customer Groups"),
]

UOMS: list[tuple[str, int]] = [
    ("Box", 1), ("Gram", 0), ("Kg", 0), ("Litre", 0), ("Meter", 0), ("Nos", 1), ("Pair", 1), ("Set", 1),
    ("Unit", 1),
]
