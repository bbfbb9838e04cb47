"""The ``k3s`` stub of the boot sandbox: what the release serves as the K3s binary (its
checksum is published with it), run by the node script as K3s. It follows boot_stubs.COMMON
(state, logs, member names)."""

# kubectl (`k3s kubectl`): --kubeconfig must name a file that exists (kubectl: "error: stat
# <path>: no such file or directory"); the local API (127.0.0.1) answers once this node's K3s
# started and got ready, the API endpoint (--server) once the scenario's API is up. Nodes: the
# scenario's, and this instance's own once its K3s is ready and the scenario lets it register
# (the Node object stays when K3s stops: https://kubernetes.io/docs/concepts/architecture/nodes/).
# Deleting a Node makes K3s remove the etcd member it stands for (k3s-io/k3s
# pkg/etcd/member_controller.go: onRemove -> RemovePeer, by the member name the Node's
# etcd.k3s.cattle.io/node-name annotation holds). The scenario may have every call hang.
# The service account issuer's documents (kubernetes pkg/serviceaccount/openidmetadata.go,
# served at /.well-known/openid-configuration and /openid/v1/jwks, as `kubectl get --raw`
# prints them: the body exactly, compact JSON): the JWKS of the scenario's keys
# (service_accounts.py), the discovery document from this server's own K3s config:
# kube-apiserver-arg service-account-issuer (K3s's default issuer unless "=" replaces it;
# "-=" puts one first, the issuer Kubernetes names) and service-account-jwks-uri.
# Secrets (get, create generic --from-file: key = file name or KEY=PATH, values base64 as the
# API returns them; `-o jsonpath={.data.<key>}`), and `apply -f FILE` of YAML documents.
K3S_PROGRAM = r"""
argv = sys.argv[1:]
K3S_ISSUER = "https://kubernetes.default.svc.cluster.local"  # K3s's default service-account-issuer
def apiserver_args():
    import yaml
    base = os.path.join(root, "etc/rancher/k3s")
    drop_ins = os.path.join(base, "config.yaml.d")
    names = sorted(n for n in (os.listdir(drop_ins) if os.path.isdir(drop_ins) else ()) if n.endswith(".yaml"))
    found = []
    for path in [os.path.join(base, "config.yaml")] + [os.path.join(drop_ins, n) for n in names]:
        config = yaml.safe_load(open(path)) or {}
        found = list(config.get("kube-apiserver-arg", found)) + list(config.get("kube-apiserver-arg+", []))
    return found
def discovery():
    issuers, jwks_uri = [K3S_ISSUER], "https://10.0.1.10:6443/openid/v1/jwks"
    for arg in apiserver_args():
        name, value = arg.split("=", 1)
        if name == "service-account-issuer-":
            issuers.insert(0, value)
        elif name == "service-account-issuer":
            issuers = [value]
        elif name == "service-account-jwks-uri":
            jwks_uri = value
    algs = sorted({key["alg"] for key in json.loads(state["jwks"])["keys"]})
    return json.dumps({"issuer": issuers[0], "jwks_uri": jwks_uri, "response_types_supported": ["id_token"],
                       "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": algs},
                      separators=(",", ":"))
def jwks():
    state["jwks_reads"] += 1
    later = state["jwks_after"]
    if later and state["jwks_reads"] > later[0]:
        state["jwks"] = later[1]
    save()
    return state["jwks"]
def secrets(words, opts):
    import base64, yaml
    namespace = opts.get("-n") or opts.get("--namespace") or "default"
    name = words[2] if len(words) > 2 else None
    found = state["cluster_secrets"].get(f"{namespace}/{name}")
    if words[:2] == ["get", "secret"] and len(words) == 3:
        if found is None:
            if opts.get("--ignore-not-found"):
                sys.exit(0)
            refuse(f'Error from server (NotFound): secrets "{name}" not found')
        output = opts.get("-o") or opts.get("--output")
        if output == "name":
            print(f"secret/{name}")
        elif output and output.startswith("jsonpath={.data.") and output.endswith("}"):
            print(found.get(output[len("jsonpath={.data."):-1].replace("\\.", "."), ""), end="")
        else:
            refuse(f"stub kubectl: output {output} not modelled")
        sys.exit(0)
    if words[:3] == ["create", "secret", "generic"] and len(words) == 4:
        name = words[3]
        data = {}
        for source in opts.get("--from-file", []):
            key, path = source.split("=", 1) if "=" in source else (os.path.basename(source), source)
            if not os.path.isfile(path):
                refuse(f"error: error reading {path}: no such file or directory")
            data[key] = base64.b64encode(open(path, "rb").read()).decode()
        if f"{namespace}/{name}" in state["cluster_secrets"]:
            # kubectl create_secret.go Run: "failed to create secret: %v"
            refuse(f'error: failed to create secret: secrets "{name}" already exists')
        state["cluster_secrets"][f"{namespace}/{name}"] = data
        save()
        print(f"secret/{name} created"); sys.exit(0)
    if words == ["apply"] and opts.get("-f"):
        if not os.path.isfile(opts["-f"]):
            refuse(f'error: the path "{opts["-f"]}" does not exist')
        for document in filter(None, yaml.safe_load_all(open(opts["-f"]))):
            state["applied"].append(document)
            print(f'{document["kind"].lower()}.admissionregistration.k8s.io/{document["metadata"]["name"]} created')
        save()
        sys.exit(0)
# Pods and the webhook's Deployment (watch.sh pod_roles_current): the scenario's pods as
# (namespace, name, service account, whether the webhook gave it AWS_ROLE_ARN); readyReplicas
# as the API returns it (absent while none is ready: kubectl's jsonpath then prints nothing).
# Only the two jsonpath queries the script makes are understood; anything else is refused.
def pods_and_deployments(words, opts):
    namespace, output = opts.get("-n") or opts.get("--namespace") or "default", opts.get("-o", "")
    if words[1] == "deployment":
        if output != "jsonpath={.status.readyReplicas}":
            refuse(f"stub kubectl: unexpected output {output!r}")
        if state["webhook_ready"] is None and not opts.get("--ignore-not-found"):
            refuse(f'Error from server (NotFound): deployments.apps "{words[2]}" not found')
        print(state["webhook_ready"] or "", end=""); sys.exit(0)
    if words[0] == "delete":
        found = [p for p in state["pods"] if p[:2] == [namespace, words[2]]]
        if not found:
            refuse(f'Error from server (NotFound): pods "{words[2]}" not found')
        state["pods"] = [p for p in state["pods"] if p not in found]
        state["deleted_pods"].append(f"{namespace}/{words[2]}"); save()
        print(f'pod "{words[2]}" deleted'); sys.exit(0)
    match = re.fullmatch(r'jsonpath=\{range \.items\[\?\(@\.spec\.serviceAccountName=="([^"]+)"\)\]\}'
                         r'\{\.metadata\.name\}\{" "\}\{\.spec\.containers\[0\]\.env\[\?\(@\.name=="AWS_ROLE_ARN"\)\]'
                         r'\.name\}\{"\\n"\}\{end\}', output)
    if not match:
        refuse(f"stub kubectl: unexpected output {output!r}")
    for pod_namespace, name, account, has_role in state["pods"]:
        if pod_namespace == namespace and account == match.group(1):
            print(f"{name} {'AWS_ROLE_ARN' if has_role else ''}")
    sys.exit(0)
def kubectl(argv):
    if state["kubectl_hangs"]:  # no answer, ever: only a bound ends the call
        time.sleep(600)
    opts, words, i = {"--from-file": []}, [], 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--from-file="):
            opts["--from-file"].append(arg.split("=", 1)[1])
        elif arg.startswith("--") and "=" in arg:
            key, value = arg.split("=", 1)
            opts[key] = value
        elif arg in ("--kubeconfig", "--server", "-s", "-o", "--output", "--raw", "-n", "--namespace", "-f"):
            opts[arg] = argv[i + 1]; i += 1
        elif arg.startswith("-"):
            opts[arg] = True
        else:
            words.append(arg)
        i += 1
    kubeconfig = opts.get("--kubeconfig")
    if kubeconfig is not None and not os.path.exists(kubeconfig):
        refuse(f"error: stat {kubeconfig}: no such file or directory")
    server = opts.get("--server") or opts.get("-s")
    if server:
        up, where = server == state["api_url"] and state["api_up_after"] is not None, server.split("//", 1)[-1]
    else:
        up, where = k3s_up() and state["node_ready"], "127.0.0.1:6443"
    if not up:
        refuse(f"The connection to the server {where} was refused - did you specify the right host or port?")
    own = state["instance_id"]
    if (state["started"] and state["node_ready"] and state["node_appears"]
            and own not in state["deleted_nodes"] and own not in state["nodes"]):
        state["nodes"].append(own)  # registered: the Node stays (NotReady) when K3s stops
        save()
    nodes = set(state["nodes"])
    if words == ["get"] and opts.get("--raw") == "/readyz":
        print("ok"); sys.exit(0)
    if words == ["get"] and opts.get("--raw") == "/.well-known/openid-configuration":
        print(discovery(), end=""); sys.exit(0)
    if words == ["get"] and opts.get("--raw") == "/openid/v1/jwks":
        print(jwks(), end=""); sys.exit(0)
    if words[:2] in (["get", "secret"], ["create", "secret"]) or words == ["apply"]:
        secrets(words, opts)
    if words[:2] == ["get", "deployment"] and len(words) == 3:
        pods_and_deployments(words, opts)
    if words in (["get", "pods"], ["get", "pod"]) or words[:2] == ["delete", "pod"]:
        pods_and_deployments(words, opts)
    if len(words) == 3 and words[:2] in (["get", "node"], ["get", "nodes"]):
        if words[2] not in nodes:
            refuse(f'Error from server (NotFound): nodes "{words[2]}" not found')
        print(f"NAME   STATUS   ROLES   AGE   VERSION\n{words[2]}   Ready   control-plane,etcd   1h   v1.33.5+k3s1")
        sys.exit(0)
    if len(words) == 3 and words[:2] in (["delete", "node"], ["delete", "nodes"]):
        name = words[2]
        if name not in nodes:
            if opts.get("--ignore-not-found"):
                sys.exit(0)
            refuse(f'Error from server (NotFound): nodes "{name}" not found')
        state["deleted_nodes"].append(name)
        state["nodes"] = [n for n in state["nodes"] if n != name]
        state["members"] = [m for m in state["members"] if m.get("name", "").rsplit("-", 1)[0] != name]
        save()
        print(f'node "{name}" deleted'); sys.exit(0)
    refuse(f"stub kubectl: unexpected {argv}")
# k3s etcd-snapshot save (https://docs.k3s.io/cli/etcd-snapshot): talks to this server's etcd
# (K3s must run); the snapshot is <name>-<node name>-<unix time> (pkg/etcd/snapshot.go:
# "%s-%s-%d", EtcdSnapshotName, NODE_NAME, now.Unix()), uploaded with --etcd-s3 to
# <folder>/<snapshot> with its metadata at <folder>/.metadata/<snapshot> (pkg/etcd/s3).
def snapshot_save(argv):
    flags, i = {}, 0
    while i < len(argv):
        if "=" in argv[i]:
            key, value = argv[i].split("=", 1)
            flags[key] = value
        elif argv[i] == "--etcd-s3":
            flags["--etcd-s3"] = True
        else:
            flags[argv[i]] = argv[i + 1]; i += 1
        i += 1
    if not k3s_up():
        refuse("level=fatal msg=\"etcd-snapshot error: failed to get etcd status: dial tcp 127.0.0.1:2379: "
               "connect: connection refused\"")
    if state["snapshot_fails"]:
        refuse("level=fatal msg=\"etcd-snapshot error: failed to upload snapshot to S3: RequestTimeout\"")
    name = f"{flags.get('--name', 'on-demand')}-{state['instance_id']}-{int(time.time())}"
    if flags.get("--etcd-s3"):
        if flags.get("--etcd-s3-bucket") != state["bucket"]:
            refuse("level=fatal msg=\"etcd-snapshot error: NoSuchBucket: The specified bucket does not exist\"")
        folder = flags.get("--etcd-s3-folder", "")
        now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        state["objects"] += [[f"{folder}/{name}".lstrip("/"), now], [f"{folder}/.metadata/{name}".lstrip("/"), now]]
    state["snapshots_saved"].append(name)
    save()
    print(f"level=info msg=\"Snapshot {name} saved.\"")
    sys.exit(0)
if "--cluster-reset" in argv:
    if state["restore_hangs"]:
        time.sleep(600)
    state["members"] = []  # the reset leaves etcd with this server as its only member
    save()
    print("ok"); sys.exit(0)
if argv[:1] == ["kubectl"]:
    kubectl(argv[1:])
if argv[:2] == ["etcd-snapshot", "save"]:
    snapshot_save(argv[2:])
print("ok")
"""
