"""The ``tchain`` command line: the customer's wallet and the operator's tools."""
