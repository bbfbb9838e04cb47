"""What 'k3s-infra destroy --yes' deletes, empties or keeps, by environment kind: the table
test_destroy_table.py checks against the emulator's state after each run.

Columns: an unprotected environment (the same with --allow-protected: the flag only lifts
protection, which such an environment does not have); a protected one (``protected: true``,
environments/prod.yaml) without --allow-protected; the same with it. Words: kept (there, as
before), deleted (gone, every version), scheduled (KMS: PendingDeletion, then gone)."""

from __future__ import annotations

COLUMNS = ("unprotected", "protected", "protected --allow-protected")
EXIT = {"unprotected": 0, "protected": 2, "protected --allow-protected": 0}  # 2: refused, as a usage error

# item: (unprotected, protected, protected --allow-protected)
DESTROY = {
    "stacks": ("deleted", "kept", "deleted"),
    "snapshot bucket": ("deleted", "kept", "kept"),
    "snapshot objects": ("deleted", "kept", "kept"),  # every version and delete marker
    "issuer bucket": ("deleted", "kept", "deleted"),
    "secrets": ("deleted", "kept", "kept"),  # token, agent-token, kubeconfig
    "kms key": ("scheduled", "kept", "kept"),
    "kms alias": ("deleted", "kept", "kept"),
    "node parameters": ("deleted", "kept", "deleted"),  # cluster-state, restore-request: made by nodes / restore
    "stack parameters": ("deleted", "kept", "deleted"),  # the servers' bundles: stack resources
    "templates": ("deleted", "kept", "deleted"),  # this cluster's artifact-bucket objects, every version
}

SOURCES = {
    "stacks": "DeleteStack deletes the nested stacks with their parent "
              "(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-nested-stacks.html); "
              "termination protection refuses it "
              "(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-protect-stacks.html); "
              "k3s-infra refuses a protected environment without --allow-protected (cli/destroy.py)",
    "snapshot bucket": "DeletionPolicy RetainExceptOnCreate keeps a resource when its stack is deleted "
                       "(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/"
                       "aws-attribute-deletionpolicy.html); unprotected: Delete",
    "snapshot objects": "a bucket is deleted only once every object version and delete marker is "
                        "(https://docs.aws.amazon.com/AmazonS3/latest/userguide/delete-bucket.html); a "
                        "DeleteObject with a versionId removes that version for good, without one it adds a "
                        "delete marker (https://docs.aws.amazon.com/AmazonS3/latest/userguide/"
                        "DeletingObjectVersions.html): destroy removes versions and markers of an unprotected "
                        "bucket only",
    "issuer bucket": "never retained (stacks/cluster_data.py): destroy empties it, the stack deletes it",
    "secrets": "RetainExceptOnCreate when protected (as above); unprotected the stack deletes them (DeleteSecret "
               "keeps a secret 7-30 days unless ForceDeleteWithoutRecovery: "
               "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DeleteSecret.html; "
               "either way it can no longer be read)",
    "kms key": "a key removed from a stack is scheduled for deletion after PendingWindowInDays (7 unprotected, 30 "
               "protected: components/cluster_key.py; "
               "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-kms-key.html, "
               "https://docs.aws.amazon.com/kms/latest/APIReference/API_ScheduleKeyDeletion.html); kept when "
               "retained",
    "kms alias": "retained with its key so the kept secrets stay findable (components/cluster_key.py)",
    "node parameters": "belong to no stack (model/naming.py cluster_state_parameter): destroy deletes them once "
                       "the stack is gone, or a redeploy's first server would wait to join a cluster that is gone",
    "stack parameters": "AWS::SSM::Parameter resources of the server stacks (components/node_bundle.py), "
                        "DeletionPolicy Delete, the default (aws-attribute-deletionpolicy.html, as above)",
    "templates": "destroy removes this cluster's keys (every version and delete marker) from the shared artifact "
                 "bucket once the stack is gone (deploy/teardown.py _empty_artifacts; docs/commands.md, destroy)",
}
