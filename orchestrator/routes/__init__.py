"""API routers, one module per resource; ``orchestrator._app.ROUTERS`` lists them."""
