"""The Deployment controller's arithmetic: hashes, fenceposts, rolling steps, status."""

from datetime import datetime, timedelta, timezone

import pytest

from k8snet.lab.controllers import rollout as ro
from k8snet.lab.controllers.deployment import replicas_for_new

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def deployment(replicas=4, surge="25%", unavailable="25%", strategy="RollingUpdate", **spec):
    s = {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "progressDeadlineSeconds": 600,
         "revisionHistoryLimit": 10,
         "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}},
         "strategy": {"type": strategy}, **spec}
    if strategy == "RollingUpdate":
        s["strategy"]["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"metadata": {"name": "web", "namespace": "default", "generation": 1, "uid": "d1"}, "spec": s}


def rs(name, replicas, available=None, created=0, revision=None, ready=None):
    ann = {ro.REVISION: str(revision)} if revision else {}
    return {"metadata": {"name": name, "uid": name, "annotations": ann,
                         "creationTimestamp": (T0 + timedelta(seconds=created)).strftime("%Y-%m-%dT%H:%M:%SZ")},
            "spec": {"replicas": replicas, "template": {}},
            "status": {"replicas": replicas, "availableReplicas": replicas if available is None else available,
                       "readyReplicas": replicas if ready is None else ready}}


def test_template_hash_is_stable_safe_and_ignores_its_own_label():
    t = deployment()["spec"]["template"]
    h = ro.template_hash(t)
    assert h == ro.template_hash({**t})
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789") and 1 <= len(h) <= 10
    labelled = {"metadata": {"labels": {"app": "web", "pod-template-hash": h}}, "spec": t["spec"]}
    assert ro.template_hash(labelled) == h
    assert ro.template_hash(t, 1) != h
    changed = {"metadata": t["metadata"], "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}
    assert ro.template_hash(changed) != h


def test_fnv32a_matches_reference_vectors():
    assert ro.fnv32a(b"") == 0x811C9DC5
    assert ro.fnv32a(b"a") == 0xE40C292C


@pytest.mark.parametrize("surge,unavailable,desired,expected", [
    ("25%", "25%", 4, (1, 1)),
    ("25%", "25%", 3, (1, 0)),      # surge rounds up, unavailable rounds down
    ("25%", "25%", 10, (3, 2)),
    (0, 0, 5, (0, 1)),              # both zero would never progress
    (2, "50%", 5, (2, 2)),
    ("0%", "100%", 3, (0, 3)),
])
def test_fenceposts_round_like_the_real_controller(surge, unavailable, desired, expected):
    assert ro.resolve_fenceposts(surge, unavailable, desired) == expected


def test_max_unavailable_is_capped_and_zero_for_recreate():
    assert ro.max_unavailable(deployment(replicas=2, surge=0, unavailable=5)) == 2
    assert ro.max_unavailable(deployment(strategy="Recreate")) == 0
    assert ro.max_surge(deployment(strategy="Recreate")) == 0


def test_rolling_update_steps_from_old_to_new():
    d = deployment(replicas=4, surge=1, unavailable=1)
    old, new = rs("web-old", 4, created=0), rs("web-new", 0, created=10)
    # Step 1: new grows by maxSurge.
    assert replicas_for_new(d, [old, new], new) == 1
    new = rs("web-new", 1, available=0, created=10)
    assert replicas_for_new(d, [old, new], new) == 1  # total already 5 = 4 + surge
    # Old may lose maxUnavailable while the new pod isn't available.
    assert ro.old_rs_scale_down(d, [old], new) == {"web-old": 3}
    old = rs("web-old", 3, created=0)
    new = rs("web-new", 1, available=1, created=10)
    assert replicas_for_new(d, [old, new], new) == 2
    new = rs("web-new", 2, available=2, created=10)
    assert ro.old_rs_scale_down(d, [old], new) == {"web-old": 1}


def test_unhealthy_old_pods_go_first():
    d = deployment(replicas=3, surge=0, unavailable=1)
    older, newer = rs("a", 2, available=0, created=0), rs("b", 1, available=1, created=5)
    new = rs("n", 0, created=10)
    # Budget: 3 pods - 2 min available - 0 new unavailable = 1, spent on the unhealthy RS.
    assert ro.old_rs_scale_down(d, [older, newer], new) == {"a": 1}


def test_scale_down_respects_min_available():
    d = deployment(replicas=3, surge=1, unavailable=0)
    old, new = rs("old", 3, created=0), rs("new", 1, available=0, created=1)
    assert ro.old_rs_scale_down(d, [old], new) == {}


def test_proportional_scaling_during_a_rollout():
    d = deployment(replicas=15, surge=3, unavailable=2)
    old = rs("old", 8, created=0)
    new = rs("new", 5, created=5)
    for r in (old, new):
        r["metadata"]["annotations"].update({ro.DESIRED_REPLICAS: "10", ro.MAX_REPLICAS: "13"})
    sizes = ro.proportional_sizes(d, new, [old])
    assert sum(sizes.values()) == 18  # 15 + maxSurge 3
    assert sizes == {"old": 11, "new": 7}
    # One active ReplicaSet takes the whole size.
    assert ro.proportional_sizes(deployment(replicas=6), rs("only", 2), [rs("gone", 0)]) == {"only": 6}


def test_scaling_event_detection():
    d = deployment(replicas=5)
    r = rs("x", 3)
    r["metadata"]["annotations"][ro.DESIRED_REPLICAS] = "3"
    assert ro.is_scaling_event(d, [r])
    r["metadata"]["annotations"][ro.DESIRED_REPLICAS] = "5"
    assert not ro.is_scaling_event(d, [r])


def test_annotations_copy_revision_and_sizes():
    d = deployment(replicas=4)
    d["metadata"]["annotations"] = {"team": "a", "kubectl.kubernetes.io/last-applied-configuration": "{}"}
    ann = ro.rs_annotations(d, rs("x", 0, revision=1), 3)
    assert ann == {"team": "a", ro.REVISION: "3", ro.DESIRED_REPLICAS: "4", ro.MAX_REPLICAS: "5"}
    assert ro.rs_annotations(d, rs("x", 0, revision=7), 3)[ro.REVISION] == "7"


def test_status_and_conditions_until_complete():
    d = deployment(replicas=2)
    new = rs("web-abc", 2, available=1, ready=1)
    s = ro.rollout_status(d, [new], new, T0)
    assert s["replicas"] == 2 and s["updatedReplicas"] == 2 and s["unavailableReplicas"] == 1
    assert s["observedGeneration"] == 1
    conds = {c["type"]: c for c in s["conditions"]}
    # 25% of 2 rounds down to 0 unavailable allowed, so 1 of 2 is not enough.
    assert (conds["Available"]["status"], conds["Available"]["reason"]) == ("False", "MinimumReplicasUnavailable")
    assert conds["Progressing"]["reason"] == "ReplicaSetUpdated"
    d["status"] = s
    new = rs("web-abc", 2)
    s2 = ro.rollout_status(d, [new], new, T0 + timedelta(seconds=5))
    conds = {c["type"]: c for c in s2["conditions"]}
    assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert conds["Available"]["reason"] == "MinimumReplicasAvailable"
    assert conds["Progressing"]["message"] == 'ReplicaSet "web-abc" has successfully progressed.'
    assert conds["Progressing"]["lastTransitionTime"] == s["conditions"][-1]["lastTransitionTime"]
    assert "unavailableReplicas" not in s2
    assert ro.is_complete(d, s2)


def test_progress_deadline_exceeded():
    d = deployment(replicas=1, progressDeadlineSeconds=10)
    stuck = rs("web-abc", 1, available=0, ready=0)
    d["status"] = {"replicas": 1, "updatedReplicas": 1, "conditions": [ro.progressing(
        "ReplicaSetUpdated", "x", "2026-01-01T00:00:00Z")]}
    s = ro.rollout_status(d, [stuck], stuck, T0 + timedelta(seconds=11))
    prog = next(c for c in s["conditions"] if c["type"] == "Progressing")
    assert (prog["status"], prog["reason"]) == ("False", "ProgressDeadlineExceeded")


def test_history_cleanup_keeps_the_newest_revisions():
    d = deployment(revisionHistoryLimit=1)
    olds = [rs(f"r{i}", 0, revision=i, created=i) for i in (1, 2, 3)]
    olds[0]["status"]["replicas"] = 1  # still has a pod: not cleaned yet
    assert [r["metadata"]["name"] for r in ro.cleanup_candidates(d, olds)] == ["r2"]


def test_find_new_rs_ignores_the_hash_label():
    d = deployment()
    t = {"metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}}, "spec": d["spec"]["template"]["spec"]}
    match = rs("web-abc", 1, created=3)
    match["spec"]["template"] = t
    assert ro.find_new_rs(d, [rs("other", 1), match]) is match
