"""HTTP serving shared by the kit's processes that listen (the mock, the validating proxy):
uvicorn set up the way both need it. It knows neither the contract, the mock nor the kit."""
