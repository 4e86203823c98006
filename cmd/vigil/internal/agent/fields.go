package agent

import "github.com/vigilsec/vigil/enforcer/audit"

// Field names of the agent's log lines, next to enforcer/audit's (which the
// audit records also use: audit.FieldContainer, audit.FieldPid, ...).
const (
	// FieldListenerMetadata carries the profile's listenerMetadata; it is
	// also added to every audit record of the container.
	FieldListenerMetadata = audit.FieldListenerMetadata
	// FieldPolicy names the policy file a container runs under.
	FieldPolicy = "policy"
	// FieldOCIVersion is the ociVersion the runtime sent.
	FieldOCIVersion = "oci_version"
	// FieldRuntimePid and FieldRuntimeUID identify the connecting runtime
	// (SO_PEERCRED).
	FieldRuntimePid = "runtime_pid"
	FieldRuntimeUID = "runtime_uid"
	// FieldBundle and FieldStatus come from the container state.
	FieldBundle = "bundle"
	FieldStatus = "status"
	// FieldSocket is the agent's listening socket.
	FieldSocket = "socket"
)
