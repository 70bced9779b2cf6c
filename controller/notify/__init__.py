"""Notifications: events derived from status changes, sent through Apprise."""
