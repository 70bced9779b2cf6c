"""The stack file's key tables: which keys exist, their types, and which Swarm ignores.

Sources: docker/cli ``cli/compose/schema/data/config_schema_v3.13.json`` (the keys
``docker stack deploy`` accepts) plus the Compose Specification additions that Keelson's
converter uses (``dns_opt``, ``group_add``, config/secret ``content``/``environment``, port
``host_ip``/``name``/``app_protocol``, volume ``subpath``, long-form ``depends_on``, numeric
``cpus``). ``IGNORED_SERVICE_KEYS`` follows docker/cli ``types.UnsupportedProperties`` and
``DeprecatedProperties``; ``FORBIDDEN_SERVICE_KEYS`` its ``ForbiddenProperties``.
"""
from __future__ import annotations

import re

from controller.render.compose.casting import Bool, Bytes, Cpus, Duration, Float, Int, Mode, Str
from controller.render.compose.schema import (
    AnyValue, Either, ExtraHosts, ListOf, ListOrDict, MapOf, MapOfStr, Struct, Type, scalar_text)

NAME_PATTERN = r"^[a-zA-Z0-9._-]+$"  # keys of services/networks/volumes/configs/secrets

# Accepted in a service, kept in ``compose``, but not used by Swarm: one warning per service.
# ``restart`` is not here although docker lists it: its converter (and ours) uses it as the
# fallback restart policy, so calling it ignored would be wrong.
IGNORED_SERVICE_KEYS = (
    "attach", "blkio_config", "cgroup", "cgroup_parent", "cgroupns_mode", "container_name",
    "cpu_count", "cpu_percent", "cpu_period", "cpu_rt_period", "cpu_rt_runtime", "depends_on",
    "device_cgroup_rules", "devices", "domainname", "expose", "external_links", "gpus", "ipc",
    "links", "mac_address", "mem_reservation", "mem_swappiness", "network_mode",
    "oom_kill_disable", "pid", "pids_limit", "platform", "privileged", "profiles",
    "pull_policy", "runtime", "scale", "security_opt", "shm_size", "storage_opt", "userns_mode",
    "uts",
    # Not in docker's list, but its converter drops them too (a service has no tmpfs list; the
    # Engine 20.10 API has no OomScoreAdj): say so instead of dropping them silently.
    "oom_score_adj", "tmpfs",
)

# Rejected: ignoring them would silently drop a limit the user asked for (docker errors too).
FORBIDDEN_SERVICE_KEYS = {
    "extends": "extends is not supported; repeat the keys or use YAML anchors",
    "volume_driver": "define the volume under top-level volumes with its driver",
    "volumes_from": "share a volume by defining it under top-level volumes",
    "cpu_quota": "set CPU limits with deploy.resources.limits.cpus",
    "cpu_shares": "set CPU limits with deploy.resources.limits.cpus",
    "cpuset": "set CPU limits with deploy.resources.limits.cpus",
    "mem_limit": "set memory limits with deploy.resources.limits.memory",
    "memswap_limit": "set memory limits with deploy.resources.limits.memory",
}

class Published(Type):
    """``published``: a port (int; digit strings are cast) or a range ``8080-8081`` (str)."""

    describe = "a port or a port range"

    def check(self, value, path, ctx):
        """Return an int port or the range text (``8080-8081``); raise ``ctx.fail`` otherwise."""
        text = scalar_text(value)
        if isinstance(value, bool) or text is None or not re.match(r"^\d+(-\d+)?$", text.strip()):
            raise ctx.error(path, f"must be a port or a range like 8080-8081, got {text!r}")
        text = text.strip()
        return int(text) if text.isdigit() else text


_STR = Str()
_STRS = ListOf(Str())
_STR_OR_LIST = Either((("str",), Str()), (("list",), ListOf(Str())))
_STR_OR_NUM = Str()  # Str takes numbers as written
_STR_LIST_OR_NUMS = ListOf(_STR_OR_NUM)


def _update_config() -> Struct:
    return Struct({
        "parallelism": Int(minimum=0), "delay": Duration(),
        "failure_action": Str(choices=("continue", "rollback", "pause")),
        "monitor": Duration(), "max_failure_ratio": Float(minimum=0.0, maximum=1.0),
        "order": Str(choices=("stop-first", "start-first")),
    })


_RESOURCE = {"cpus": Cpus(), "memory": Bytes()}

DEPLOY = Struct({
    "mode": Str(choices=("replicated", "global", "replicated-job", "global-job")),
    "endpoint_mode": Str(choices=("vip", "dnsrr")),
    "replicas": Int(minimum=0),
    "labels": ListOrDict(),
    "rollback_config": _update_config(),
    "update_config": _update_config(),
    "resources": Struct({
        "limits": Struct({**_RESOURCE, "pids": Int(minimum=0)}),
        "reservations": Struct({
            **_RESOURCE,
            "generic_resources": ListOf(Struct({
                "discrete_resource_spec": Struct({"kind": Str(), "value": Int(minimum=0)}),
            })),
        }),
    }),
    "restart_policy": Struct({
        "condition": Str(choices=("none", "on-failure", "any")),
        "delay": Duration(), "max_attempts": Int(minimum=0), "window": Duration(),
    }),
    "placement": Struct({
        "constraints": _STRS,
        "preferences": ListOf(Struct({"spread": Str()})),
        "max_replicas_per_node": Int(minimum=0),
    }),
})

_FILE_REF = Either((("str",), Str()), (("dict",), Struct({
    "source": Str(), "target": Str(), "uid": _STR_OR_NUM, "gid": _STR_OR_NUM, "mode": Mode(),
}, required=("source",))))

_PORT = Either(
    (("str", "int"), _STR_OR_NUM),
    (("dict",), Struct({
        "target": Int(minimum=0), "published": Published(),
        "protocol": Str(choices=("tcp", "udp", "sctp")), "mode": Str(choices=("ingress", "host")),
        "host_ip": Str(), "name": Str(), "app_protocol": Str(),
    }, required=("target",))))

_VOLUME_MOUNT = Either(
    (("str",), Str()),
    (("dict",), Struct({
        "type": Str(choices=("volume", "bind", "tmpfs", "npipe", "cluster")),
        "source": Str(), "target": Str(), "read_only": Bool(), "consistency": Str(),
        "bind": Struct({"propagation": Str(), "create_host_path": Bool(), "selinux": Str()}),
        "volume": Struct({"nocopy": Bool(), "subpath": Str()}),
        "tmpfs": Struct({"size": Bytes(), "mode": Mode()}),
    })))

_HEALTHCHECK = Struct({
    "disable": Bool(), "interval": Duration(), "retries": Int(minimum=0),
    "test": _STR_OR_LIST, "timeout": Duration(), "start_period": Duration(),
    "start_interval": Duration(),
})

_SERVICE_NETWORKS = Either(
    (("list",), ListOf(Str(), unique=True)),
    (("dict",), MapOf(Struct({
        "aliases": _STRS, "ipv4_address": Str(), "ipv6_address": Str(),
        "link_local_ips": _STRS, "priority": Int(), "driver_opts": MapOfStr(),
        "mac_address": Str(),
    }), nullable_values=True)))

_ULIMIT = Either((("int", "str"), Int()),
                 (("dict",), Struct({"soft": Int(), "hard": Int()}, required=("soft", "hard"))))

_DEPENDS_ON = Either((("list",), _STRS), (("dict",), MapOf(AnyValue(), nullable_values=True)))

_ENV_FILE_ITEM = Either((("str",), Str()),
                        (("dict",), Struct({"path": Str(), "required": Bool(), "format": Str()},
                                           required=("path",))))

BUILD = Either(
    (("str",), Str()),
    (("dict",), Struct({
        "context": Str(), "dockerfile": Str(), "args": ListOrDict(), "labels": ListOrDict(),
        "target": Str(), "cache_from": _STRS, "network": Str(), "shm_size": Bytes(),
        "extra_hosts": ExtraHosts(),
    })))

_SERVICE_FIELDS = {
    "build": BUILD,
    "cap_add": ListOf(Str(), unique=True), "cap_drop": ListOf(Str(), unique=True),
    "command": _STR_OR_LIST, "configs": ListOf(_FILE_REF),
    "credential_spec": Struct({"config": Str(), "file": Str(), "registry": Str()}),
    "deploy": DEPLOY,
    "dns": _STR_OR_LIST, "dns_opt": _STRS, "dns_search": _STR_OR_LIST,
    "entrypoint": _STR_OR_LIST,
    "env_file": Either((("str",), Str()), (("list",), ListOf(_ENV_FILE_ITEM))),
    "environment": ListOrDict(), "extra_hosts": ExtraHosts(), "group_add": _STR_LIST_OR_NUMS,
    "healthcheck": _HEALTHCHECK, "hostname": Str(), "image": Str(), "init": Bool(),
    "isolation": Str(), "labels": ListOrDict(),
    "logging": Struct({"driver": Str(), "options": MapOfStr()}),
    "networks": _SERVICE_NETWORKS, "oom_score_adj": Int(minimum=-1000),
    "ports": ListOf(_PORT), "read_only": Bool(), "restart": Str(),
    "secrets": ListOf(_FILE_REF), "stdin_open": Bool(),
    "stop_grace_period": Duration(), "stop_signal": Str(), "sysctls": ListOrDict(),
    "tmpfs": _STR_OR_LIST, "tty": Bool(),
    "ulimits": MapOf(_ULIMIT), "user": _STR_OR_NUM, "volumes": ListOf(_VOLUME_MOUNT),
    "working_dir": Str(),
    # Ignored by Swarm (warned), but typed loosely so a value of any shape is accepted.
    **{k: AnyValue() for k in IGNORED_SERVICE_KEYS},
    **{k: AnyValue() for k in FORBIDDEN_SERVICE_KEYS},  # the loader rejects them with a hint
    "depends_on": _DEPENDS_ON,
}

SERVICE = Struct(_SERVICE_FIELDS)

_EXTERNAL = Either((("bool", "str"), Bool()), (("dict",), Struct({"name": Str()})))

NETWORK = Struct({
    "name": Str(), "driver": Str(), "driver_opts": MapOfStr(),
    "ipam": Struct({
        "driver": Str(),
        "config": ListOf(Struct({"subnet": Str(), "ip_range": Str(), "gateway": Str(),
                                 "aux_addresses": MapOfStr()})),
        "options": MapOfStr(),
    }),
    "external": _EXTERNAL, "internal": Bool(), "attachable": Bool(), "enable_ipv6": Bool(),
    "labels": ListOrDict(),
})

VOLUME = Struct({
    "name": Str(), "driver": Str(), "driver_opts": MapOfStr(), "external": _EXTERNAL,
    "labels": ListOrDict(),
})

_FILE_OBJECT = {
    "name": Str(), "file": Str(), "external": _EXTERNAL, "labels": ListOrDict(),
    "template_driver": Str(), "environment": Str(), "content": Str(),
}
CONFIG = Struct(_FILE_OBJECT)
SECRET = Struct({**_FILE_OBJECT, "driver": Str(), "driver_opts": MapOfStr()})

TOP = Struct({
    "version": _STR_OR_NUM,
    "name": Str(),
    "services": MapOf(SERVICE, key_pattern=NAME_PATTERN),
    "networks": MapOf(NETWORK, key_pattern=NAME_PATTERN, null_as_empty=True),
    "volumes": MapOf(VOLUME, key_pattern=NAME_PATTERN, null_as_empty=True),
    "configs": MapOf(CONFIG, key_pattern=NAME_PATTERN, null_as_empty=True),
    "secrets": MapOf(SECRET, key_pattern=NAME_PATTERN, null_as_empty=True),
}, required=("services",))
