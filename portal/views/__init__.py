"""Route handlers of the portal, one module per page."""
