#!/usr/bin/env python3
"""Prints the ConfigMaps synmon's Deployments mount, built from the repo's own files so they
cannot drift from what `synmon check` validates:

  synmon-config      synmon.yaml: synmon.example.yaml with in-cluster paths, the location
                     taken from SYNMON_LOCATION (set per overlay) and the replica id from
                     SYNMON_REPLICA_ID (the pod's name)
  synmon-journeys    journeys/*.yaml
  synmon-alerts      alerts/*.yaml (rule unit tests under alerts/tests/ are not shipped)
  synmon-dashboards  dashboards/*.json
  synmon-flags       flags/*.yaml (the feature-flag registry)

Usage: python3 deploy/k8s/configmaps.py > deploy/k8s/shared/configmaps.yaml
       kubectl apply -k deploy/k8s/shared && kubectl apply -k deploy/k8s/overlays/<location>
       python3 deploy/k8s/configmaps.py --tree DIR   # lay them out as the pod sees them, with
                                                     # /etc/synmon -> DIR (CI runs `synmon check`)
"""
import json
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]

# (text in synmon.example.yaml, in-cluster replacement): each must match exactly once.
EDITS = [
    # The location from the overlay's ConfigMap, the replica id from the pod's name.
    ("location: local\n", 'location: "${SYNMON_LOCATION}"\nreplica_id: "${SYNMON_REPLICA_ID}"\n'),
    ("artifacts: artifacts\n", "artifacts: /var/lib/synmon/artifacts\n"),
    ("journeys: journeys\n", "journeys: /etc/synmon/journeys\nalerts: /etc/synmon/alerts\n"),
    ("dashboards: dashboards\n", "dashboards: /etc/synmon/dashboards\n"),
    ("files: [flags/flag_registry.yaml]\n", "files: [/etc/synmon/flags/flag_registry.yaml]\n"),
]


def in_cluster_config() -> str:
    text = (REPO / "synmon.example.yaml").read_text()
    for old, new in EDITS:
        n = text.count(old)
        if n != 1:
            sys.exit(f"configmaps.py: expected `{old.strip()}` once in synmon.example.yaml, found {n}")
        text = text.replace(old, new)
    return text


def config_map(name: str, data: dict) -> str:
    # JSON is YAML: every value is quoted exactly, whatever the file holds.
    doc = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "synmon"}},
        "data": data,
    }
    return "---\n" + json.dumps(doc, indent=2, sort_keys=False) + "\n"


def files(folder: str, pattern: str) -> dict:
    return {p.name: p.read_text() for p in sorted((REPO / folder).glob(pattern)) if p.is_file()}


# ConfigMap name -> (mount folder under /etc/synmon, its files).
def maps() -> dict:
    return {
        "synmon-config": ("config", {"synmon.yaml": in_cluster_config()}),
        "synmon-journeys": ("journeys", files("journeys", "*.yaml")),
        "synmon-alerts": ("alerts", files("alerts", "*.yaml")),
        "synmon-dashboards": ("dashboards", files("dashboards", "*.json")),
        "synmon-flags": ("flags", files("flags", "*.yaml")),
    }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--tree":
        root = pathlib.Path(sys.argv[2]).resolve()
        for folder, data in maps().values():
            (root / folder).mkdir(parents=True, exist_ok=True)
            for name, text in data.items():
                (root / folder / name).write_text(text.replace("/etc/synmon/", f"{root}/"))
        return
    if len(sys.argv) != 1:
        sys.exit(__doc__)
    sys.stdout.write("".join(config_map(name, data) for name, (_, data) in maps().items()))


if __name__ == "__main__":
    main()
