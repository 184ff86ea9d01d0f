"""The API's routers, one module per resource; ``treadle.api.app`` includes them."""
