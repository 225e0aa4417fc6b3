"""The Flask web app: `create_app()` builds it; JSON blueprints live in app/routes/."""

from app.factory import create_app

__all__ = ["create_app"]
