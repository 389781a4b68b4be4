"""The HTTP side of the mock: Connexion app, middleware, handlers, control API."""
