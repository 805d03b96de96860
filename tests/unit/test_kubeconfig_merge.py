"""Merging a lab's context into a user's kubeconfig and taking it out again: pure on
dicts, then on files in a temporary home owned by another uid (as ``sudo k8snet lab
up`` does for the learner), including the symlink and ownership refusals."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from k8snet.lab import kubeconfig as kc
from k8snet.lab.kubeconfig import KubeconfigError, LabEntries, UserKubeconfig

LAB_CONTEXT = "k8snet-demo"
LAB_DOC = {
    "apiVersion": "v1", "kind": "Config", "preferences": {}, "current-context": LAB_CONTEXT,
    "clusters": [{"name": "k8snet-demo", "cluster": {"server": "https://127.0.0.1:40000",
                                                     "certificate-authority-data": "Q0E="}}],
    "users": [{"name": "k8snet-demo-admin", "user": {"client-certificate-data": "Q0VSVA==",
                                                      "client-key-data": "S0VZ"}}],
    "contexts": [{"name": LAB_CONTEXT, "context": {"cluster": "k8snet-demo", "user": "k8snet-demo-admin",
                                                   "namespace": "default"}}],
}
NAMES = LabEntries(LAB_CONTEXT, "k8snet-demo", "k8snet-demo-admin")
USER_DOC = {
    "apiVersion": "v1", "kind": "Config", "preferences": {"colors": True}, "current-context": "kind-kind",
    "clusters": [{"name": "kind-kind", "cluster": {"server": "https://127.0.0.1:6443"}}],
    "users": [{"name": "kind-kind", "user": {"token": "t"}}],
    "contexts": [{"name": "kind-kind", "context": {"cluster": "kind-kind", "user": "kind-kind"}}],
    "extensions": [{"name": "x", "extension": {"a": 1}}],
}
OTHER_UID = 65534  # nobody: a uid that is not ours


# -- on dicts --------------------------------------------------------------------------

def test_entries_of_names_the_context_its_cluster_and_user():
    assert kc.entries_of(LAB_DOC, LAB_CONTEXT) == NAMES
    with pytest.raises(KubeconfigError, match="no context 'k8snet-other'"):
        kc.entries_of(LAB_DOC, "k8snet-other")


def test_merge_into_nothing_makes_a_kubeconfig_and_sets_the_current_context():
    merged = kc.merge(None, LAB_DOC, LAB_CONTEXT)
    assert merged["current-context"] == LAB_CONTEXT
    for section, _ in kc.SECTIONS:
        assert merged[section] == LAB_DOC[section]
    assert (merged["apiVersion"], merged["kind"]) == ("v1", "Config")


def test_merge_keeps_everything_else_and_the_current_context():
    merged = kc.merge(USER_DOC, LAB_DOC, LAB_CONTEXT)
    assert merged["current-context"] == "kind-kind"
    assert merged["preferences"] == {"colors": True} and merged["extensions"] == USER_DOC["extensions"]
    assert [c["name"] for c in merged["contexts"]] == ["kind-kind", LAB_CONTEXT]
    assert [u["name"] for u in merged["users"]] == ["kind-kind", "k8snet-demo-admin"]
    assert USER_DOC["contexts"] == [USER_DOC["contexts"][0]] and len(USER_DOC["clusters"]) == 1, "input unchanged"


def test_merge_replaces_a_stale_entry_of_the_same_name_where_it_stands():
    stale = {**USER_DOC, "clusters": [{"name": "k8snet-demo", "cluster": {"server": "https://127.0.0.1:1"}},
                                      *USER_DOC["clusters"]]}
    merged = kc.merge(stale, LAB_DOC, LAB_CONTEXT)
    assert [c["name"] for c in merged["clusters"]] == ["k8snet-demo", "kind-kind"]
    assert merged["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:40000"


def test_merge_sets_an_empty_current_context():
    assert kc.merge({**USER_DOC, "current-context": ""}, LAB_DOC, LAB_CONTEXT)["current-context"] == LAB_CONTEXT


def test_merge_refuses_a_file_that_is_not_a_kubeconfig():
    with pytest.raises(KubeconfigError, match="not a list"):
        kc.merge({"clusters": {"a": 1}}, LAB_DOC, LAB_CONTEXT)


def test_unmerge_removes_exactly_the_three_entries():
    merged = kc.merge(USER_DOC, LAB_DOC, LAB_CONTEXT)
    assert kc.unmerge(merged, NAMES) == USER_DOC
    # a user entry named like the lab's is gone too, but nothing with another name
    assert kc.unmerge(kc.merge(None, LAB_DOC, LAB_CONTEXT), NAMES) == {
        "apiVersion": "v1", "kind": "Config", "preferences": {}, "clusters": [], "users": [], "contexts": []}


def test_unmerge_unsets_the_current_context_only_when_it_was_the_labs():
    merged = kc.merge({k: v for k, v in USER_DOC.items() if k != "current-context"}, LAB_DOC, LAB_CONTEXT)
    assert merged["current-context"] == LAB_CONTEXT
    assert "current-context" not in kc.unmerge(merged, NAMES)
    assert kc.unmerge(kc.merge(USER_DOC, LAB_DOC, LAB_CONTEXT), NAMES)["current-context"] == "kind-kind"


def test_is_empty():
    assert kc.is_empty(kc.unmerge(kc.merge(None, LAB_DOC, LAB_CONTEXT), NAMES))
    assert not kc.is_empty(USER_DOC)
    assert not kc.is_empty({"apiVersion": "v1", "kind": "Config", "current-context": "x"})


# -- which user --------------------------------------------------------------------------

def test_invoking_user_is_sudo_user_with_the_home_from_the_password_database():
    import pwd

    nobody = pwd.getpwuid(OTHER_UID)
    target = UserKubeconfig.invoking({"SUDO_USER": nobody.pw_name, "HOME": "/root"})
    assert target == UserKubeconfig(Path(nobody.pw_dir), OTHER_UID, nobody.pw_gid)
    me = pwd.getpwuid(os.getuid())
    assert UserKubeconfig.invoking({"HOME": "/elsewhere"}) == UserKubeconfig(Path(me.pw_dir), me.pw_uid, me.pw_gid)
    with pytest.raises(KubeconfigError, match="no user 'no-such-user-k8snet'"):
        UserKubeconfig.invoking({"SUDO_USER": "no-such-user-k8snet"})


# -- on files -----------------------------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="files owned by another uid need root (os.chown)")


@pytest.fixture()
def home(tmp_path: Path) -> UserKubeconfig:
    """A home folder owned by uid 65534, as a learner's home is not root's."""
    folder = tmp_path / "home"
    folder.mkdir(mode=0o755)
    os.chown(folder, OTHER_UID, OTHER_UID)
    return UserKubeconfig(folder, OTHER_UID, OTHER_UID)


def _owned(path: Path, uid: int, mode: int) -> bool:
    st = path.lstat()
    return st.st_uid == uid and st.st_gid == uid and stat.S_IMODE(st.st_mode) == mode


def _write_user_file(target: UserKubeconfig, doc: dict) -> None:
    target.path.parent.mkdir(mode=0o700, exist_ok=True)
    os.chown(target.path.parent, target.uid, target.gid)
    target.path.write_text(yaml.safe_dump(doc))
    os.chmod(target.path, 0o600)
    os.chown(target.path, target.uid, target.gid)


@needs_root
def test_merge_file_creates_kube_folder_and_file_owned_by_the_user(home: UserKubeconfig):
    recorded = []
    done = kc.merge_file(home, LAB_DOC, LAB_CONTEXT, recorded.append)
    assert recorded == [done] and done.created_file and done.created_dir and done.names == NAMES
    assert _owned(home.path.parent, OTHER_UID, 0o700) and _owned(home.path, OTHER_UID, 0o600)
    assert yaml.safe_load(home.path.read_text()) == kc.merge(None, LAB_DOC, LAB_CONTEXT)
    assert os.listdir(home.path.parent) == ["config"], "no temporary file left behind"
    # down: nothing of the user's was there, so nothing of ours stays
    kc.unmerge_file(done)
    assert not home.path.parent.exists()


@needs_root
def test_merge_file_keeps_the_users_file_and_down_restores_it(home: UserKubeconfig):
    _write_user_file(home, USER_DOC)
    done = kc.merge_file(home, LAB_DOC, LAB_CONTEXT)
    assert not done.created_file and not done.created_dir
    assert yaml.safe_load(home.path.read_text()) == kc.merge(USER_DOC, LAB_DOC, LAB_CONTEXT)
    assert _owned(home.path, OTHER_UID, 0o600)
    kc.unmerge_file(done)
    assert yaml.safe_load(home.path.read_text()) == USER_DOC and _owned(home.path, OTHER_UID, 0o600)


@needs_root
def test_unmerge_keeps_a_created_file_the_user_added_to(home: UserKubeconfig):
    done = kc.merge_file(home, LAB_DOC, LAB_CONTEXT)
    added = kc.merge(yaml.safe_load(home.path.read_text()), {**USER_DOC, "current-context": "kind-kind"}, "kind-kind")
    _write_user_file(home, added)
    kc.unmerge_file(done)
    assert [c["name"] for c in yaml.safe_load(home.path.read_text())["contexts"]] == ["kind-kind"]


@needs_root
def test_symlink_at_the_config_is_refused_and_not_followed(home: UserKubeconfig, tmp_path: Path):
    victim = tmp_path / "victim"
    victim.write_text("root: secret\n")
    home.path.parent.mkdir(mode=0o700)
    os.chown(home.path.parent, OTHER_UID, OTHER_UID)
    home.path.symlink_to(victim)
    with pytest.raises(KubeconfigError, match=r"\.kube/config is a symlink"):
        kc.merge_file(home, LAB_DOC, LAB_CONTEXT)
    with pytest.raises(KubeconfigError, match="symlink"):
        kc.check_target(home)
    assert victim.read_text() == "root: secret\n" and home.path.is_symlink()


@needs_root
def test_symlink_at_the_kube_folder_is_refused_and_not_followed(home: UserKubeconfig, tmp_path: Path):
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    (home.home / ".kube").symlink_to(elsewhere)
    with pytest.raises(KubeconfigError, match=r"\.kube is a symlink"):
        kc.merge_file(home, LAB_DOC, LAB_CONTEXT)
    assert os.listdir(elsewhere) == []


@needs_root
def test_a_file_owned_by_someone_else_is_refused(home: UserKubeconfig):
    _write_user_file(home, USER_DOC)
    os.chown(home.path, 0, 0)  # e.g. a hard link to a root-owned file
    with pytest.raises(KubeconfigError, match="belongs to uid 0, not uid 65534"):
        kc.merge_file(home, LAB_DOC, LAB_CONTEXT)
    assert yaml.safe_load(home.path.read_text()) == USER_DOC


@needs_root
def test_a_file_that_is_not_a_kubeconfig_is_left_alone(home: UserKubeconfig):
    _write_user_file(home, USER_DOC)
    home.path.write_text("- just\n- a list\n")
    with pytest.raises(KubeconfigError, match="not a kubeconfig"):
        kc.merge_file(home, LAB_DOC, LAB_CONTEXT)
    assert home.path.read_text() == "- just\n- a list\n"


def test_records_round_trip(tmp_path: Path):
    done = kc.MergeRecord("/home/u", 1000, 1000, LAB_CONTEXT, "k8snet-demo", "k8snet-demo-admin", True, False)
    kc.write_records(tmp_path / "r.json", [done])
    assert kc.read_records(tmp_path / "r.json") == [done]
    assert kc.read_records(tmp_path / "missing.json") == []
