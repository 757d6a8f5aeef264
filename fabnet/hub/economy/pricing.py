"""Prices as the hub uses them (issue 11): a machine's own price where its maker set one,
else the defaults (a credit per machine-hour, the materials table's cost per kg); and the
machines able to make a design in a material, as quote candidates."""

from __future__ import annotations

from fabnet.core import credits as cr
from fabnet.core.machines import Machine, fits
from fabnet.core.quotes import Candidate
from fabnet.core.states import MachineKind, MachineState
from fabnet.profiles import CncMaterial, FdmMaterial, load_materials
from fabnet.store import Store


def default_per_kg(terms: cr.Terms) -> dict[str, int]:
    """Every material of the materials table: its cost per kg in milli-credits."""
    materials = load_materials()
    every: list[FdmMaterial | CncMaterial] = [*materials.fdm.values(), *materials.cnc.values()]
    return {m.name: cr.default_per_kg_mc(m.cost_per_kg, terms.credit_value_milli) for m in every}


def effective_price(
    price: cr.MachinePrice | None, machine_id: str, defaults: dict[str, int]
) -> cr.MachinePrice:
    """``price`` (as its maker set it, or None) completed with the defaults: a per-kg price
    for every material the maker did not name."""
    own = price or cr.MachinePrice(machine_id)
    return cr.MachinePrice(machine_id, own.per_hour_mc, {**defaults, **own.per_kg_mc})


def material_kind(material: str) -> MachineKind:
    """FDM for a filament, CNC for stock; raises ``KeyError`` naming an unknown material."""
    return (
        MachineKind.CNC
        if isinstance(load_materials().get(material), CncMaterial)
        else MachineKind.FDM
    )


def can_make(
    machine: Machine, kind: MachineKind, material: str, size_mm: tuple[float, float, float]
) -> bool:
    """Whether ``machine`` could take a part of ``size_mm`` in ``material`` (any state but
    offline, not on hold): the eligible machines a quote prices."""
    return (
        machine.kind is kind
        and material in machine.matchable_materials
        and fits(size_mm, machine.volume_mm)
        and machine.state is not MachineState.OFFLINE
        and not machine.held
    )


def candidates(
    store: Store,
    material: str,
    size_mm: tuple[float, float, float],
    terms: cr.Terms,
) -> list[Candidate]:
    """The machines that can make a part of ``size_mm`` in ``material``, with their prices."""
    kind = material_kind(material)
    defaults = default_per_kg(terms)
    prices = store.prices.all()
    out = []
    for m in store.catalog.list_machines():
        if not can_make(m, kind, material, size_mm):
            continue
        price = effective_price(prices.get(m.machine_id), m.machine_id, defaults)
        per_kg = price.per_kg_mc.get(material, 0)
        out.append(Candidate(m.machine_id, m.maker_id, m.speed_factor, price.per_hour_mc, per_kg))
    return out
