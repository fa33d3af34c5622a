"""The Amazon access layer: every SP-API call, report and Amazon fact lives in this package.

Imports nothing on purpose: `amz2erp.mapping` and `amz2erp.config` read `amazon.marketplaces` and
`amazon.limits`, and must not pull in python-amazon-sp-api. The facade is `amz2erp.amazon.client.AmazonClient`.
"""
