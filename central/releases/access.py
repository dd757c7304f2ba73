"""Who may fetch a release bundle: admins, and the boxes of the release's town.

A box authenticates over HTTP with a machine token of role ``box`` whose name is its box id
(``parkgrid central add-token BOX_ID --role box``; the box keeps it in its secrets beside its
MQTT password). Bundles are per town, not per box: any box of the town may fetch any of the
town's releases, and that is all a box token may do here. Central serves one town today (the
site file's ``id``), so "the town's boxes" are the site file's ``[boxes]``; a county central
would keep a town per release and check it against the box's town in ``box_town``.
"""

from __future__ import annotations

from central.auth.models import Actor, Role
from central.errors import Forbidden, Unauthenticated
from site_model.site import Site


def box_town(site: Site, box_id: str) -> str | None:
    """The town a box belongs to, or None for a name that is no box of this central."""
    return site.id if box_id in site.boxes else None


def may_fetch(actor: Actor, site: Site, release_town: str) -> None:
    """Raise unless ``actor`` may download a bundle of ``release_town``."""
    if actor.role == Role.ADMIN:
        return
    if actor.role != Role.BOX:
        raise Forbidden(actor.role.value, (Role.ADMIN.value, Role.BOX.value))
    town = box_town(site, actor.name)
    if town is None:
        raise Unauthenticated(f"token {actor.name!r} is a box token of no box of this central")
    if town != release_town:
        raise Forbidden(f"box of {town}", (f"a box of {release_town}",))
