"""Reference data (customers, products, reps) learned from the same stream."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from sia.events.models import Customer, Product, Rep
from sia.findings import Finding

_Ref = TypeVar("_Ref", Customer, Product, Rep)


@dataclass(slots=True)
class Catalog:
    """The latest reference record of each customer, product and rep."""

    customers: dict[str, Customer] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)
    reps: dict[str, Rep] = field(default_factory=dict)

    def update(self, event: Customer | Product | Rep) -> None:
        """Keep the newest record; an older one arriving late does not overwrite it."""
        if isinstance(event, Customer):
            _keep_newest(self.customers, event.customer_id, event)
        elif isinstance(event, Product):
            _keep_newest(self.products, event.product_id, event)
        else:
            _keep_newest(self.reps, event.rep_id, event)

    def owner_rep(self, customer_id: str) -> Rep | None:
        """The customer's owner rep, when known."""
        customer = self.customers.get(customer_id)
        if customer is None or customer.owner_rep_id is None:
            return None
        return self.reps.get(customer.owner_rep_id)

    def team_of(self, customer_id: str) -> str | None:
        """Team of the customer's owner rep."""
        rep = self.owner_rep(customer_id)
        return rep.team if rep else None

    def owner_of(self, finding: Finding) -> tuple[str | None, str | None]:
        """Whose a finding is, as (rep id, team): a customer's owner rep and their team,
        the rep an alert about a rep is about, or the team an alert about a team is."""
        facts = finding.facts
        if finding.subject_kind == "rep":
            rep = self.reps.get(finding.subject_id)
            return finding.subject_id, (rep.team if rep else None) or _text(facts.get("team"))
        if finding.subject_kind == "team":
            return None, finding.subject_id
        customer_id = finding.subject_id if finding.subject_kind == "customer" \
            else _text(facts.get("customer_id"))
        customer = self.customers.get(customer_id) if customer_id else None
        rep_id = customer.owner_rep_id if customer else None
        rep = self.reps.get(rep_id) if rep_id else None
        return rep_id, (rep.team if rep else None) or _text(facts.get("team"))

    def segment_of(self, customer_id: str) -> str | None:
        """The customer's assigned segment."""
        customer = self.customers.get(customer_id)
        return customer.segment if customer else None

    def customer_name(self, customer_id: str) -> str:
        """Display name: the name when known, the id otherwise."""
        customer = self.customers.get(customer_id)
        if customer and customer.name:
            return f"{customer.name} ({customer_id})"
        return f"customer {customer_id}"

    def product_name(self, product_id: str) -> str:
        """Display name of a product: its name and id."""
        product = self.products.get(product_id)
        if product and product.name:
            # all-caps or all-lowercase names read better in title case; a name with its
            # own capitals ("GTX Basic") is kept as the catalogue spells it
            name = product.name
            if name.isupper() or name.islower():
                name = name.title()
            return f"{name} ({product_id})"
        return f"product {product_id}"


def _keep_newest(table: dict[str, _Ref], key: str, event: _Ref) -> None:
    current = table.get(key)
    if current is None or current.occurred_at <= event.occurred_at:
        table[key] = event


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
