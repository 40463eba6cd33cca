"""Routing: which person or channel gets an alert, through what, and when (Alertmanager-style).

`tree` reads the routing tree of config/routing.yaml and matches alert attributes against
it; `recipients` turns the matched routes into concrete recipients with the reason for
each; `explain` prints both for `sia routes test ALERT.json`.
"""

from sia.routing.explain import AlertJsonError, explain_route
from sia.routing.receivers import Receiver, TeamChannels
from sia.routing.recipients import (
    Routed,
    alert_attributes,
    resolve,
    resolve_with_notes,
    route_alert,
)
from sia.routing.tree import QuietHours, Route, RouteMatch, RouteSettings, load_routes

__all__ = [
    "AlertJsonError",
    "QuietHours",
    "Receiver",
    "Route",
    "RouteMatch",
    "RouteSettings",
    "Routed",
    "TeamChannels",
    "alert_attributes",
    "explain_route",
    "load_routes",
    "resolve",
    "resolve_with_notes",
    "route_alert",
]
