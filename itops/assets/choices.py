"""Asset kinds, lifecycle statuses and the moves allowed between them, history event kinds."""
from __future__ import annotations

import enum


class Family(enum.StrEnum):
    """Kinds that share kind-specific fields."""
    COMPUTER = "computer"
    MOBILE = "mobile"
    DESK_PHONE = "desk_phone"
    NETWORK = "network"
    OTHER = "other"


class AssetKind(enum.StrEnum):
    DESKTOP = "desktop"
    LAPTOP = "laptop"
    SERVER = "server"
    MOBILE_PHONE = "mobile_phone"
    DESK_PHONE = "desk_phone"
    SWITCH = "switch"
    ROUTER = "router"
    ACCESS_POINT = "access_point"
    PRINTER = "printer"
    OTHER = "other"

    @property
    def label(self) -> str:
        return _KIND_LABELS[self]

    @property
    def family(self) -> Family:
        return _KIND_FAMILY[self]


_KIND_LABELS = {
    AssetKind.DESKTOP: "Desktop", AssetKind.LAPTOP: "Laptop", AssetKind.SERVER: "Server",
    AssetKind.MOBILE_PHONE: "Mobile phone", AssetKind.DESK_PHONE: "Desk IP phone", AssetKind.SWITCH: "Switch",
    AssetKind.ROUTER: "Router", AssetKind.ACCESS_POINT: "Access point", AssetKind.PRINTER: "Printer",
    AssetKind.OTHER: "Other",
}
_KIND_FAMILY = {
    AssetKind.DESKTOP: Family.COMPUTER, AssetKind.LAPTOP: Family.COMPUTER, AssetKind.SERVER: Family.COMPUTER,
    AssetKind.MOBILE_PHONE: Family.MOBILE, AssetKind.DESK_PHONE: Family.DESK_PHONE,
    AssetKind.SWITCH: Family.NETWORK, AssetKind.ROUTER: Family.NETWORK, AssetKind.ACCESS_POINT: Family.NETWORK,
    AssetKind.PRINTER: Family.OTHER, AssetKind.OTHER: Family.OTHER,
}

# Fields that only make sense for some families; set on another kind they are refused, not ignored.
# A computer's MAC is its primary interface's, kept so the agent can find the machine again.
FAMILY_FIELDS: dict[Family, tuple[str, ...]] = {
    Family.COMPUTER: ("mac",),
    Family.MOBILE: ("imei", "phone_number", "iccid", "carrier"),
    Family.DESK_PHONE: ("mac", "extension"),
    Family.NETWORK: ("management_address", "device_type", "credential_id"),
}
COMPUTER_KINDS = tuple(kind.value for kind, family in _KIND_FAMILY.items() if family == Family.COMPUTER)
KIND_SPECIFIC_FIELDS = frozenset(field for fields in FAMILY_FIELDS.values() for field in fields)


class Status(enum.StrEnum):
    ORDERED = "ordered"
    IN_STOCK = "in_stock"
    DEPLOYED = "deployed"
    IN_REPAIR = "in_repair"
    PENDING_RETURN = "pending_return"
    RETIRED = "retired"
    DISPOSED = "disposed"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()

    @property
    def allowed_next(self) -> tuple[Status, ...]:
        return TRANSITIONS[self]

    def can_move_to(self, target: Status) -> bool:
        return target in TRANSITIONS[self]


# The lifecycle. Checkout is the only way into DEPLOYED from stock, and checkin the only way back.
TRANSITIONS: dict[Status, tuple[Status, ...]] = {
    Status.ORDERED: (Status.IN_STOCK, Status.RETIRED),
    Status.IN_STOCK: (Status.DEPLOYED, Status.IN_REPAIR, Status.RETIRED),
    Status.DEPLOYED: (Status.IN_STOCK, Status.IN_REPAIR, Status.PENDING_RETURN),
    Status.IN_REPAIR: (Status.IN_STOCK, Status.DEPLOYED, Status.RETIRED),
    Status.PENDING_RETURN: (Status.IN_STOCK, Status.DEPLOYED, Status.RETIRED),
    Status.RETIRED: (Status.IN_STOCK, Status.DISPOSED),
    Status.DISPOSED: (),
}

# A holder is someone who has the asset in hand: only these statuses may have one.
HELD_STATUSES = frozenset({Status.DEPLOYED, Status.IN_REPAIR, Status.PENDING_RETURN})
# Statuses reached by checkout/checkin rather than a plain status change.
CHECKOUT_STATUS = Status.DEPLOYED
CHECKIN_STATUS = Status.IN_STOCK
# Where a checked-in asset may go: back to stock (the usual), straight to repair, or out of service.
CHECKIN_TARGETS = (Status.IN_STOCK, Status.IN_REPAIR, Status.RETIRED)


class EventKind(enum.StrEnum):
    CREATED = "created"
    EDITED = "edited"
    CHECKOUT = "checkout"
    CHECKIN = "checkin"
    STATUS = "status"
    INVENTORY = "inventory"
    ENROLLED = "enrolled"
    IMPORTED = "imported"

    @property
    def label(self) -> str:
        return {"checkout": "Checked out", "checkin": "Checked in", "status": "Status changed",
                "inventory": "Inventory changed"}.get(self.value, self.value.capitalize())


# netmiko device types offered for network devices; a test checks each is one netmiko knows.
DEVICE_TYPES: tuple[tuple[str, str], ...] = (
    ("cisco_ios", "Cisco IOS"),
    ("cisco_xe", "Cisco IOS XE"),
    ("cisco_nxos", "Cisco NX-OS"),
    ("cisco_asa", "Cisco ASA"),
    ("arista_eos", "Arista EOS"),
    ("juniper_junos", "Juniper Junos"),
    ("hp_procurve", "HPE ProCurve / Aruba OS-Switch"),
    ("aruba_aoscx", "Aruba AOS-CX"),
    ("mikrotik_routeros", "MikroTik RouterOS"),
    ("ubiquiti_edgeswitch", "Ubiquiti EdgeSwitch"),
    ("fortinet", "Fortinet FortiOS"),
    ("paloalto_panos", "Palo Alto PAN-OS"),
    ("linux", "Linux (SSH)"),
)
DEVICE_TYPE_NAMES = frozenset(name for name, _ in DEVICE_TYPES)

SORTS = {
    "tag": "Tag",
    "name": "Name",
    "kind": "Kind",
    "status": "Status",
    "-updated": "Recently changed",
}
