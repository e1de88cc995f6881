"""cs_pipeline: daily customer-health scores from CRM records and product-usage events."""

__version__ = "0.1.0"
