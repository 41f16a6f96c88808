"""The staff portal of the center: complaint register, complaint pages, deadline board.

Mount it next to the web chat with :func:`setup_portal`; manage users with
:mod:`portal.users` (``add_user``, ``list_users``, ``disable_user``).
"""

from portal.app import setup_portal

__all__ = ["setup_portal"]
