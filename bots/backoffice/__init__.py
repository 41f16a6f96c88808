"""The operators' back-office chat: a Telegram forum group with a topic per complaint.

:class:`BackofficeNotifier` turns complaint events into outbox rows on channel
``backoffice``; :class:`BackofficeMessenger` (run by a :class:`BackofficeDeliveryWorker`)
opens topics, posts cards and forwards; :func:`build_backoffice_router` handles the
operators' buttons and messages. Importing :mod:`.messenger` or :mod:`.router` imports
aiogram; the notifier and the operator list do not.
"""

from .notifier import CHANNEL, BackofficeNotifier
from .operators import Role, parse_operators

__all__ = ["CHANNEL", "BackofficeNotifier", "Role", "parse_operators"]
