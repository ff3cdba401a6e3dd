package protocol

import "encoding/json"

// The params of the methods gatewayd shares with OpenClaw, field for field
// as OpenClaw's gateway accepts them (its validators' schemas, printed as
// Go by daemon/protocol/openclaw/gen-types.mjs). OpenClaw's clients send
// fields gatewayd has no use for; they are accepted and ignored, so a
// client of either gateway works with both. TestOpenClawParamsSchemas
// fails when OpenClaw's schemas and these types drift apart.
//
// Scalars keep their JSON type (optional numbers and booleans are pointers,
// so absent and zero differ); objects, unions and arrays of objects are
// json.RawMessage (any JSON value).

// AgentParams are the params of agent.
type AgentParams struct {
	Message                                  string          `json:"message"`
	AgentID                                  string          `json:"agentId,omitempty"`
	Provider                                 string          `json:"provider,omitempty"`
	Model                                    string          `json:"model,omitempty"`
	To                                       string          `json:"to,omitempty"`
	ReplyTo                                  string          `json:"replyTo,omitempty"`
	SessionID                                string          `json:"sessionId,omitempty"`
	SessionKey                               string          `json:"sessionKey,omitempty"`
	ExpectedExistingSessionID                string          `json:"expectedExistingSessionId,omitempty"`
	Thinking                                 string          `json:"thinking,omitempty"`
	Deliver                                  *bool           `json:"deliver,omitempty"`
	Attachments                              json.RawMessage `json:"attachments,omitempty"`
	Channel                                  string          `json:"channel,omitempty"`
	ReplyChannel                             string          `json:"replyChannel,omitempty"`
	AccountID                                string          `json:"accountId,omitempty"`
	ReplyAccountID                           string          `json:"replyAccountId,omitempty"`
	ThreadID                                 string          `json:"threadId,omitempty"`
	GroupID                                  string          `json:"groupId,omitempty"`
	GroupChannel                             string          `json:"groupChannel,omitempty"`
	GroupSpace                               string          `json:"groupSpace,omitempty"`
	Timeout                                  *int64          `json:"timeout,omitempty"`
	BestEffortDeliver                        *bool           `json:"bestEffortDeliver,omitempty"`
	Lane                                     string          `json:"lane,omitempty"`
	Cwd                                      string          `json:"cwd,omitempty"`
	CleanupBundleMcpOnRunEnd                 *bool           `json:"cleanupBundleMcpOnRunEnd,omitempty"`
	ModelRun                                 *bool           `json:"modelRun,omitempty"`
	PromptMode                               json.RawMessage `json:"promptMode,omitempty"`
	ExtraSystemPrompt                        string          `json:"extraSystemPrompt,omitempty"`
	BootstrapContextMode                     json.RawMessage `json:"bootstrapContextMode,omitempty"`
	BootstrapContextRunKind                  json.RawMessage `json:"bootstrapContextRunKind,omitempty"`
	AcpTurnSource                            string          `json:"acpTurnSource,omitempty"`
	InternalRuntimeHandoffID                 string          `json:"internalRuntimeHandoffId,omitempty"`
	InternalExecutionIdentityRetry           *bool           `json:"internalExecutionIdentityRetry,omitempty"`
	InternalExecutionIdentityRecoveryAttempt *int64          `json:"internalExecutionIdentityRecoveryAttempt,omitempty"`
	ExecApprovalFollowupExpectedSessionID    string          `json:"execApprovalFollowupExpectedSessionId,omitempty"`
	InternalEvents                           json.RawMessage `json:"internalEvents,omitempty"`
	InputProvenance                          json.RawMessage `json:"inputProvenance,omitempty"`
	SuppressPromptPersistence                *bool           `json:"suppressPromptPersistence,omitempty"`
	SessionEffects                           json.RawMessage `json:"sessionEffects,omitempty"`
	SourceReplyDeliveryMode                  json.RawMessage `json:"sourceReplyDeliveryMode,omitempty"`
	DisableMessageTool                       *bool           `json:"disableMessageTool,omitempty"`
	SwarmCollector                           *bool           `json:"swarmCollector,omitempty"`
	SwarmOutputSchema                        json.RawMessage `json:"swarmOutputSchema,omitempty"`
	ForceRestartSafeTools                    *bool           `json:"forceRestartSafeTools,omitempty"`
	ForceCodeModeTools                       *bool           `json:"forceCodeModeTools,omitempty"`
	VoiceWakeTrigger                         string          `json:"voiceWakeTrigger,omitempty"`
	IdempotencyKey                           string          `json:"idempotencyKey"`
	Label                                    string          `json:"label,omitempty"`
}

// AgentWaitParams are the params of agent.wait.
type AgentWaitParams struct {
	RunID     string `json:"runId"`
	TimeoutMs *int64 `json:"timeoutMs,omitempty"`
}

// ChatHistoryParams are the params of chat.history.
type ChatHistoryParams struct {
	SessionKey    string   `json:"sessionKey"`
	AgentID       string   `json:"agentId,omitempty"`
	Cursor        string   `json:"cursor,omitempty"`
	Limit         *int64   `json:"limit,omitempty"`
	MaxBytes      *int64   `json:"maxBytes,omitempty"`
	Offset        *int64   `json:"offset,omitempty"`
	PendingBefore *int64   `json:"pendingBefore,omitempty"`
	InputRunIDs   []string `json:"inputRunIds,omitempty"`
	MessageID     string   `json:"messageId,omitempty"`
	SessionID     string   `json:"sessionId,omitempty"`
	MaxChars      *int64   `json:"maxChars,omitempty"`
}

// ChatSendParams are the params of chat.send.
type ChatSendParams struct {
	SessionKey                     string          `json:"sessionKey"`
	AgentID                        string          `json:"agentId,omitempty"`
	SessionID                      string          `json:"sessionId,omitempty"`
	Message                        string          `json:"message"`
	Mentions                       json.RawMessage `json:"mentions,omitempty"`
	WorkContext                    json.RawMessage `json:"workContext,omitempty"`
	Intent                         json.RawMessage `json:"intent,omitempty"`
	Thinking                       string          `json:"thinking,omitempty"`
	FastMode                       json.RawMessage `json:"fastMode,omitempty"`
	FastAutoOnSeconds              *int64          `json:"fastAutoOnSeconds,omitempty"`
	QueueMode                      string          `json:"queueMode,omitempty"`
	Deliver                        *bool           `json:"deliver,omitempty"`
	OriginatingChannel             string          `json:"originatingChannel,omitempty"`
	OriginatingTo                  string          `json:"originatingTo,omitempty"`
	OriginatingAccountID           string          `json:"originatingAccountId,omitempty"`
	OriginatingThreadID            string          `json:"originatingThreadId,omitempty"`
	ReplyToID                      string          `json:"replyToId,omitempty"`
	Attachments                    json.RawMessage `json:"attachments,omitempty"`
	ToolBindings                   json.RawMessage `json:"toolBindings,omitempty"`
	TimeoutMs                      *int64          `json:"timeoutMs,omitempty"`
	SystemInputProvenance          json.RawMessage `json:"systemInputProvenance,omitempty"`
	SystemProvenanceReceipt        string          `json:"systemProvenanceReceipt,omitempty"`
	SuppressCommandInterpretation  *bool           `json:"suppressCommandInterpretation,omitempty"`
	ExpectedLeafEntryID            json.RawMessage `json:"expectedLeafEntryId,omitempty"`
	ExpectedSessionRoutingContract string          `json:"expectedSessionRoutingContract,omitempty"`
	ExpectedPermissionMode         json.RawMessage `json:"expectedPermissionMode,omitempty"`
	ExpectedToolOverrides          json.RawMessage `json:"expectedToolOverrides,omitempty"`
	IdempotencyKey                 string          `json:"idempotencyKey"`
}

// ChatAbortParams are the params of chat.abort.
type ChatAbortParams struct {
	SessionKey       string `json:"sessionKey"`
	AgentID          string `json:"agentId,omitempty"`
	RunID            string `json:"runId,omitempty"`
	PreserveSideRuns *bool  `json:"preserveSideRuns,omitempty"`
}

// ChatStartupParams are the params of chat.startup.
type ChatStartupParams struct {
	SessionKey    string   `json:"sessionKey,omitempty"`
	AgentID       string   `json:"agentId,omitempty"`
	Cursor        string   `json:"cursor,omitempty"`
	Limit         *int64   `json:"limit,omitempty"`
	MaxBytes      *int64   `json:"maxBytes,omitempty"`
	Offset        *int64   `json:"offset,omitempty"`
	PendingBefore *int64   `json:"pendingBefore,omitempty"`
	InputRunIDs   []string `json:"inputRunIds,omitempty"`
	MessageID     string   `json:"messageId,omitempty"`
	SessionID     string   `json:"sessionId,omitempty"`
	MaxChars      *int64   `json:"maxChars,omitempty"`
	ShortID       string   `json:"shortId,omitempty"`
	SlugHint      string   `json:"slugHint,omitempty"`
}

// SessionsListParams are the params of sessions.list.
type SessionsListParams struct {
	Limit                  *int64          `json:"limit,omitempty"`
	Offset                 *int64          `json:"offset,omitempty"`
	ActiveMinutes          *int64          `json:"activeMinutes,omitempty"`
	ActiveOnly             *bool           `json:"activeOnly,omitempty"`
	RequireLastInteraction *bool           `json:"requireLastInteraction,omitempty"`
	SortBy                 json.RawMessage `json:"sortBy,omitempty"`
	IncludeGlobal          *bool           `json:"includeGlobal,omitempty"`
	IncludeUnknown         *bool           `json:"includeUnknown,omitempty"`
	ExcludeSubagents       *bool           `json:"excludeSubagents,omitempty"`
	ExcludeCron            *bool           `json:"excludeCron,omitempty"`
	ExcludeSystem          *bool           `json:"excludeSystem,omitempty"`
	ConfiguredAgentsOnly   *bool           `json:"configuredAgentsOnly,omitempty"`
	IncludeDerivedTitles   *bool           `json:"includeDerivedTitles,omitempty"`
	IncludeLastMessage     *bool           `json:"includeLastMessage,omitempty"`
	IncludeActivitySummary *bool           `json:"includeActivitySummary,omitempty"`
	Label                  string          `json:"label,omitempty"`
	ProjectID              string          `json:"projectId,omitempty"`
	WorkspaceDir           string          `json:"workspaceDir,omitempty"`
	Group                  string          `json:"group,omitempty"`
	Pinned                 *bool           `json:"pinned,omitempty"`
	BoardFace              json.RawMessage `json:"boardFace,omitempty"`
	HasBoard               *bool           `json:"hasBoard,omitempty"`
	CreatorID              string          `json:"creatorId,omitempty"`
	OwnerID                string          `json:"ownerId,omitempty"`
	OwnerFirst             *bool           `json:"ownerFirst,omitempty"`
	InvolvingMe            *bool           `json:"involvingMe,omitempty"`
	ProfileRelation        json.RawMessage `json:"profileRelation,omitempty"`
	InvolvingProfileID     string          `json:"involvingProfileId,omitempty"`
	IncludePeople          *bool           `json:"includePeople,omitempty"`
	SpawnedBy              string          `json:"spawnedBy,omitempty"`
	AgentID                string          `json:"agentId,omitempty"`
	Search                 string          `json:"search,omitempty"`
	Archived               json.RawMessage `json:"archived,omitempty"`
}

// SessionsMessagesSubscribeParams are the params of sessions.messages.subscribe.
type SessionsMessagesSubscribeParams struct {
	Key              string `json:"key"`
	AgentID          string `json:"agentId,omitempty"`
	IncludeApprovals *bool  `json:"includeApprovals,omitempty"`
}

// SessionsMessagesUnsubscribeParams are the params of sessions.messages.unsubscribe.
type SessionsMessagesUnsubscribeParams struct {
	Key     string `json:"key"`
	AgentID string `json:"agentId,omitempty"`
}

// AgentsListParams are the params of agents.list.
type AgentsListParams struct {
}

// ModelsListParams are the params of models.list. gatewayd's models are
// its agents, one catalog for every agent and session, so only agentId
// (which must name an agent) and provider (a filter) change the answer.
type ModelsListParams struct {
	AgentID                     string          `json:"agentId,omitempty"`
	SessionKey                  string          `json:"sessionKey,omitempty"`
	AuthProfileID               string          `json:"authProfileId,omitempty"`
	Provider                    string          `json:"provider,omitempty"`
	IncludeDetails              *bool           `json:"includeDetails,omitempty"`
	IncludeProviderCapabilities *bool           `json:"includeProviderCapabilities,omitempty"`
	IncludeDefaultModels        *bool           `json:"includeDefaultModels,omitempty"`
	PreparedOnly                *bool           `json:"preparedOnly,omitempty"`
	Refresh                     *bool           `json:"refresh,omitempty"`
	View                        json.RawMessage `json:"view,omitempty"`
}

// MessageActionParams are the params of message.action.
type MessageActionParams struct {
	Channel                string          `json:"channel"`
	Action                 string          `json:"action"`
	Params                 json.RawMessage `json:"params"`
	Reply                  json.RawMessage `json:"reply,omitempty"`
	AccountID              string          `json:"accountId,omitempty"`
	RequesterAccountID     string          `json:"requesterAccountId,omitempty"`
	RequesterSenderID      string          `json:"requesterSenderId,omitempty"`
	SenderIsOwner          *bool           `json:"senderIsOwner,omitempty"`
	SessionKey             string          `json:"sessionKey,omitempty"`
	SessionID              string          `json:"sessionId,omitempty"`
	InboundTurnKind        string          `json:"inboundTurnKind,omitempty"`
	AgentID                string          `json:"agentId,omitempty"`
	ToolContext            json.RawMessage `json:"toolContext,omitempty"`
	ConversationReadOrigin string          `json:"conversationReadOrigin,omitempty"`
	IdempotencyKey         string          `json:"idempotencyKey"`
}

// ConfigGetParams are the params of config.get.
type ConfigGetParams struct {
}
