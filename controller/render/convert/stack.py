"""Compose stack -> Swarm objects in the Engine API's shapes: Keelson's ``docker stack deploy``.

Pure: no docker, git or network; the only I/O is reading config/secret ``file:`` sources.
Pieces live by concept in ``convert_service`` (scalars, resources, policies), ``convert_ports``,
``convert_mounts`` and ``convert_objects`` (networks, configs, secrets, volumes).
"""
from __future__ import annotations

from typing import Mapping, Optional

from controller.model.desired import DesiredService, DesiredStack
from controller.model.labels import (MANAGED_BY, MANAGED_BY_VALUE, NAMESPACE, REVISION,
                                     SPEC_HASH, STACK_IMAGE)
from controller.model.manifest import ImageRef, StackManifest
from controller.model.source import Revision
from controller.render.convert import service as cs
from controller.render.convert.context import ConvertContext
from controller.render.convert.mounts import service_mounts
from controller.render.convert.objects import (file_object, network_objects, service_file_refs,
                                               service_networks, volume_objects)
from controller.render.convert.ports import endpoint_spec
from controller.render.convert.normalize import spec_hash
from controller.render.convert.units import parse_duration_ns


def to_desired(manifest: StackManifest, images: Mapping[str, ImageRef],
               revision: Optional[Revision] = None, *,
               environ: Optional[Mapping[str, str]] = None,
               bind_root: str = "") -> DesiredStack:
    """Convert one loaded stack into the Swarm objects it asks for.

    Args:
        manifest: the stack as loaded and validated from its stack file.
        images: compose service name -> pinned image; a service runs ``images[svc].reference``
            when present, else its ``image:`` as written.
        revision: the git commit the manifest came from; written to service labels only
            (``io.keelson.revision``), never to container labels (that would replace tasks).
        environ: variables for config/secret ``environment:`` sources; default the
            manifest's own ``variables`` (its ``.env`` plus the allowed controller variables,
            the same set interpolation saw).
        bind_root: ``KEELSON_BIND_ROOT``: an absolute folder that relative bind mount sources
            resolve against (``<bind_root>/<stack>/<source>``); "" refuses relative sources.
    Returns:
        DesiredStack: services keyed ``<stack>_<svc>``, networks (the used ones, external
        flagged), configs/secrets keyed by content-versioned name, volumes. Specs are in the
        Engine's shape (durations ns, CPUs NanoCPUs, memory bytes), only keys the stack sets,
        lists sorted where order has no meaning; each service carries ``io.keelson.spec-hash``.
    Raises:
        ManifestError: a value Swarm cannot express, with key path and line when known.
    Source: mapping rules follow ``docker stack deploy`` (docker/cli ``cli/compose/convert``).
        Keelson differences: UpdateConfig.FailureAction defaults to ``rollback`` (``continue``
        for run-once services: restart condition none) and an
        UpdateConfig is always sent; numeric ``cpus`` accepted; ``group_add`` -> Groups and
        ``dns_opt`` -> DNSConfig.Options are converted (docker 28's schema refuses both); jobs get no
        UpdateConfig (Swarm refuses one); the service label
        ``io.keelson.managed-by``.
    """
    ctx = ConvertContext(manifest, bind_root=bind_root)
    compose = manifest.compose or {}
    networks = compose.get("networks") or {}
    volumes = compose.get("volumes") or {}
    env = manifest.variables if environ is None else environ
    configs = {k: file_object(ctx, "configs", k, v or {}, env)
               for k, v in (compose.get("configs") or {}).items()}
    secrets = {k: file_object(ctx, "secrets", k, v or {}, env)
               for k, v in (compose.get("secrets") or {}).items()}

    desired = DesiredStack(name=manifest.name)
    used_networks = []
    for raw_name in sorted(manifest.services, key=str):
        svc, svc_name = manifest.services[raw_name] or {}, str(raw_name)
        spec, nets = service_spec(ctx, svc_name, svc, images.get(svc_name), networks, volumes,
                                  configs, secrets)
        used_networks.extend(nets)
        if revision is not None:
            spec["Labels"][REVISION] = revision.sha
        digest = spec["Labels"][SPEC_HASH] = spec_hash(spec)
        desired.services[spec["Name"]] = DesiredService(spec["Name"], svc_name, spec, digest)
    desired.networks = network_objects(ctx, used_networks, networks)
    desired.configs = {c.name: c for c in configs.values()}
    desired.secrets = {s.name: s for s in secrets.values()}
    desired.volumes = volume_objects(ctx, volumes)
    desired.warnings = ctx.warnings
    return desired


def _image(ctx: ConvertContext, svc_name: str, svc: dict, ref: Optional[ImageRef]):
    """(ContainerSpec.Image, ``com.docker.stack.image`` label value) for one service."""
    if ref is not None:
        written = svc.get("image") or (ref.repository + (f":{ref.tag}" if ref.tag else ""))
        return ref.reference, str(written)
    if not svc.get("image"):
        ctx.fail(f"services.{svc_name}", "service has no image (and no built image was given)")
    return str(svc["image"]), str(svc["image"])


def service_spec(ctx: ConvertContext, svc_name: str, svc: dict, ref: Optional[ImageRef],
                 networks: Mapping[str, dict], volumes: Mapping[str, dict],
                 configs: Mapping, secrets: Mapping):
    """One compose service -> (ServiceSpec JSON, network keys it uses).

    Labels: service Labels = ``deploy.labels`` + namespace + ``com.docker.stack.image`` +
    ``io.keelson.managed-by``; ContainerSpec.Labels = ``labels`` + namespace (as docker).
    Raises:
        ManifestError: see :func:`to_desired`.
    Source: docker/cli convert ``Service``.
    """
    key = f"services.{svc_name}"
    deploy = svc.get("deploy") or {}
    image, written = _image(ctx, svc_name, svc, ref)
    labels = {**cs.str_dict(ctx, f"{key}.deploy.labels", deploy.get("labels")),
              NAMESPACE: ctx.stack, STACK_IMAGE: written, MANAGED_BY: MANAGED_BY_VALUE}
    attachments, used = service_networks(ctx, svc_name, svc, networks)

    cspec: dict = {"Image": image,
                   "Labels": {**cs.str_dict(ctx, f"{key}.labels", svc.get("labels")),
                              NAMESPACE: ctx.stack}}
    cspec["Command"] = cs.command(ctx, f"{key}.entrypoint", svc.get("entrypoint"))
    cspec["Args"] = cs.command(ctx, f"{key}.command", svc.get("command"))
    for src, dst in (("hostname", "Hostname"), ("working_dir", "Dir"), ("user", "User"),
                     ("stop_signal", "StopSignal"), ("isolation", "Isolation")):
        cspec[dst] = str(svc[src]) if svc.get(src) not in (None, "") else None
    cspec["Env"] = cs.environment(ctx, f"{key}.environment", svc.get("environment"))
    cspec["Groups"] = cs.string_list(ctx, f"{key}.group_add", svc.get("group_add")) or None
    if svc.get("stop_grace_period") is not None:
        cspec["StopGracePeriod"] = ctx.parse(f"{key}.stop_grace_period", parse_duration_ns,
                                             svc["stop_grace_period"])
    cspec["Healthcheck"] = cs.healthcheck(ctx, f"{key}.healthcheck", svc.get("healthcheck"))
    cspec["Mounts"] = service_mounts(ctx, svc_name, svc.get("volumes"), volumes)
    cspec["Configs"] = service_file_refs(ctx, "configs", svc_name, svc.get("configs"), configs) or None
    cspec["Secrets"] = service_file_refs(ctx, "secrets", svc_name, svc.get("secrets"), secrets) or None
    cspec["Hosts"] = cs.extra_hosts(ctx, f"{key}.extra_hosts", svc.get("extra_hosts"))
    cspec["DNSConfig"] = _dns(ctx, key, svc)
    for src, dst in (("init", "Init"), ("read_only", "ReadOnly"), ("tty", "TTY"),
                     ("stdin_open", "OpenStdin")):
        cspec[dst] = bool(svc[src]) if svc.get(src) is not None and (svc[src] or src == "init") else None
    cspec["Sysctls"] = cs.str_dict(ctx, f"{key}.sysctls", svc.get("sysctls")) or None
    cap_add, cap_drop = cs.capabilities(svc.get("cap_add"), svc.get("cap_drop"))
    cspec["CapabilityAdd"], cspec["CapabilityDrop"] = cap_add or None, cap_drop or None
    cspec["Ulimits"] = cs.ulimits(ctx, f"{key}.ulimits", svc.get("ulimits"))
    cspec["Privileges"] = _privileges(ctx, key, svc)

    task: dict = {"ContainerSpec": {k: v for k, v in cspec.items() if v is not None}}
    task["Resources"] = cs.resources(ctx, f"{key}.deploy.resources", deploy.get("resources"))
    task["RestartPolicy"] = cs.restart_policy(ctx, key, svc)
    task["Placement"] = cs.placement(ctx, f"{key}.deploy.placement", deploy.get("placement"))
    if ref is not None and ref.platforms:
        # as docker stack deploy --resolve-image always: run only where the image can run
        task["Placement"] = dict(task["Placement"] or {}, Platforms=[
            {"Architecture": arch, "OS": os_} for os_, arch in ref.platforms])
    task["Networks"] = attachments
    logging = svc.get("logging")
    if logging:
        drv: dict = {"Name": str(logging.get("driver") or "")}
        if logging.get("options"):
            drv["Options"] = cs.str_dict(ctx, f"{key}.logging.options", logging["options"])
        task["LogDriver"] = drv

    mode = cs.mode(ctx, f"{key}.deploy", deploy)
    job = "ReplicatedJob" in mode or "GlobalJob" in mode
    if job and deploy.get("update_config") is not None:
        # swarmkit controlapi validateJob: "Jobs may not have an update config"
        ctx.fail(f"{key}.deploy.update_config",
                 f"a job ({deploy.get('mode')}) cannot have update_config (Swarm refuses it)")
    spec = {"Name": ctx.scope(svc_name), "Labels": labels,
            "TaskTemplate": {k: v for k, v in task.items() if v is not None},
            "Mode": mode,
            "UpdateConfig": None if job else cs.update_config(
                ctx, f"{key}.deploy.update_config", deploy.get("update_config"),
                keelson_default=True),
            "RollbackConfig": cs.update_config(ctx, f"{key}.deploy.rollback_config",
                                               deploy.get("rollback_config"),
                                               keelson_default=False),
            "EndpointSpec": endpoint_spec(ctx, svc_name, svc)}
    cond = (task.get("RestartPolicy") or {}).get("Condition")
    if (not job and cond == "none" and spec["UpdateConfig"] is not None
            and not (deploy.get("update_config") or {}).get("failure_action")):
        # issue 8.1: Swarm's updater counts a task that exits (even 0) during the monitor
        # period as a failed update (observed on Engine 20.10: an update of a condition-none
        # service with failure_action rollback is rolled back). A run-once service gets
        # ``continue``; Keelson judges its tasks' exit codes itself (health.assess). An
        # ``on-failure`` service keeps rollback: it is most often long-running.
        spec["UpdateConfig"]["FailureAction"] = FINITE_FAILURE_ACTION
    return {k: v for k, v in spec.items() if v is not None}, used


def _dns(ctx: ConvertContext, key: str, svc: dict) -> Optional[dict]:
    """``dns``/``dns_search``/``dns_opt`` -> ``DNSConfig{Nameservers, Search, Options}``."""
    out = {}
    for src, dst in (("dns", "Nameservers"), ("dns_search", "Search"), ("dns_opt", "Options")):
        vals = cs.string_list(ctx, f"{key}.{src}", svc.get(src))
        if vals:
            out[dst] = vals
    return out or None


FINITE_FAILURE_ACTION = "continue"  # update failure action of run-once services (issue 8.1)


def _privileges(ctx: ConvertContext, key: str, svc: dict) -> Optional[dict]:
    """``credential_spec`` (file or registry form) -> ``Privileges.CredentialSpec``.

    Raises:
        ManifestError: the ``config`` form (needs a config ID Keelson resolves only at apply),
            or more than one form.
    """
    cred = svc.get("credential_spec")
    if not cred:
        return None
    forms = [k for k in ("config", "file", "registry") if cred.get(k)]
    if len(forms) != 1 or forms[0] == "config":
        ctx.fail(f"{key}.credential_spec", "credential_spec takes exactly one of file or registry")
    return {"CredentialSpec": {forms[0].capitalize(): str(cred[forms[0]])}}
