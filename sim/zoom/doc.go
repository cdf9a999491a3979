// Package zoom is a simulated Zoom for tests, drills and `zccadapter sim
// zoom`, built from docs/PROTOCOL.md: the OAuth token endpoint (all
// four grants), the event-subscription WebSocket with Zoom's frames,
// per-subscription fan-out of events with delivery faults, a REST subset, a
// traffic model (package sim/traffic) driving the events, and control
// endpoints to inject events and faults and to change every setting while
// the server runs.
//
// Every behaviour PROTOCOL.md marks M, L or ? is a setting (Settings, embedded
// in Config; GET/POST /sim/settings), never a fixed assumption: token mode and
// cap, token-expiry policy for open sockets, failure wordings, the
// build_connection success text, close codes, second-connection policy,
// heartbeat timeout, refresh-token lifetime and reuse tolerance, the status
// for bad client credentials and for a missing scope, query-string token
// parameters, and per-subscription delivery (delay, jitter, reorder,
// duplicate, drop, half-open) and content differences (event_ts skew, key
// order, a volatile field). All randomness comes from Settings.Seed.
//
// # Routes
//
//	POST /oauth/token                     token endpoint: grant_type account_credentials or
//	                                      client_credentials (S2S), authorization_code, refresh_token;
//	                                      HTTP Basic client auth, form body
//	GET  /ws?subscriptionId=S&access_token=T   event-subscription WebSocket
//	GET  /v2/contact_center/engagements?from=&to=&page_size=&next_page_token=
//	                                      ended engagements whose start is in [from, to]
//	GET  /v2/contact_center/engagements/{id}   one ended engagement; 404 while live or unknown
//	GET  /v2/contact_center/users?page_size=&next_page_token=   the traffic model's agents
//	GET  /sim/settings                    the current Settings, defaults applied
//	POST /sim/settings                    a JSON object with any subset of Settings; replies the result;
//	                                      400 naming the field if invalid (nothing changes then)
//	GET  /sim/subscriptions               []SubscriptionStatus
//	GET  /sim/subscriptions/{id}/faults   that subscription's Faults
//	POST /sim/subscriptions/{id}/faults   a JSON object with any subset of Faults, merged; replies the result
//	DELETE /sim/subscriptions/{id}/faults clear them (a half-open socket is then closed)
//	POST /sim/subscriptions/{id}/drop     close that subscription's sockets now (no close frame)
//	POST /sim/events                      {"subscriptions":[..]?, "event":{..}} or {"content":"raw"}
//	                                      or {"content_base64":"…"} (bytes sent raw, invalid UTF-8 kept)
//	POST /sim/oauth/codes                 {"redirect_uri":U} -> {"code","redirect_uri","expires_at"}:
//	                                      a single-use authorization code, valid AuthCodeTTL
//	GET  /sim/tokens                      TokenStats
//	POST /sim/tokens/revoke               cancel every live access token -> {"revoked":n}
//	POST /sim/traffic/start               body traffic.Config; 400 if invalid, 409 if running
//	POST /sim/traffic/stop                stop generating, end every call, reply traffic.Truth;
//	                                      409 if not running, 500 if the drain did not finish
//	GET  /sim/truth                       current traffic.Truth; 404 before any traffic
//	GET  /healthz                         200
//
// # Tokens
//
// Access tokens from every grant share one table and Settings.TokenMode
// ("multi", "legacy-invalidate", "capped"). The authorization-code grant
// takes a code from POST /sim/oauth/codes (single use, 5 minutes, bound to
// its redirect_uri) and returns a refresh token too; completing it revokes
// every earlier refresh token of the app (code 4741). The refresh grant
// rotates: a new refresh token each time, the old one dead beyond
// Settings.RefreshReuseTolerance (code 4740). Errors are
// {"reason","error"[,"code"]}: invalid_client (Settings.InvalidClientStatus),
// unsupported_grant_type 4705, invalid_request, invalid_grant with 4733
// (code expired), 4734 (code unknown or used), 4709 (redirect_uri mismatch),
// 4740, 4741. Token-endpoint faults (429, 5xx, slow) and lost refresh replies
// (the connection is closed after the refresh was processed) are settings.
//
// # WebSocket behaviour
//
// The first frame on every socket is build_connection. A missing
// access_token query parameter (an Authorization header is ignored) gets
// success:false "token is empty"; an unknown, expired or cancelled token one
// of Settings.FailureWordings (in turn); an unknown subscription, or a second
// socket under SecondConnectionReject, another failure text. Each failure is
// followed by a close (Settings.CloseCode, default 1008). On success
// (content Settings.ConnectedContent) the socket receives a heartbeat reply
// for each {"module":"heartbeat"} it sends, and a message frame for each
// event. Under "close-at-expiry" a socket whose token expires or is cancelled
// gets a build_connection failure frame and a close.
//
// Each socket has its own send queue (8192 frames) drained by its own writer;
// a full queue closes that socket at once, without a close frame (a slow
// consumer: counted and logged).
// The server keeps a reader on every socket and never reads with a timeout;
// liveness is the optional heartbeat watchdog (Settings.HeartbeatTimeout). A
// kicked socket is closed with Settings.CloseCode "kicked"; Close closes every
// socket with 1001. Zoom's real close codes are unknown (PROTOCOL §1): a
// client must not depend on these.
//
// # Delivery faults and the ground truth
//
// Publish returns how many subscriptions an event reached after faults: a
// dropped copy, a copy to a half-open subscription and a copy to a
// subscription without an open socket do not count. A delayed or held-back
// copy counts when the subscription had an open socket at Publish time; if no
// socket is open when it is finally sent it is lost after all, which the
// traffic model's Truth cannot see: SubscriptionStatus.Lost counts those.
// Frames are reproducible for a given sequence of events; with concurrent
// traffic the interleaving of calls, and so each frame's number, depends on
// timing.
//
// # REST subset
//
// Bearer auth: a missing, unknown, expired or cancelled token gets 401
// {"code":124,"message":"Invalid access token."}; a token without the
// endpoint's scope gets code 4711 (Settings.ScopeErrorStatus). Rate limits
// per category (Settings.RateLimitQPS, RateLimitDaily) answer 429 with
// X-RateLimit-Category, X-RateLimit-Type, X-RateLimit-Limit,
// X-RateLimit-Remaining and, for a daily limit, Retry-After as an ISO
// date-time. Engagements are recorded from the events Publish (and POST
// /sim/events "event") sends: engagement_started opens one, the leg events
// add agents, consumers and queues, engagement_ended ends it; only ended
// engagements are served. Their JSON shape is the simulator's own: PROTOCOL.md
// does not pin Zoom's down.
//
// # Not simulated
//
// An OAuth consent page (codes come from POST /sim/oauth/codes), PKCE, the
// token revocation endpoint, TLS (ws:// and http:// only), WebSocket pings,
// more than one account or OAuth app, the recording-control endpoint (PUT
// .../recording/{command}) and every other REST endpoint, event
// subscriptions over webhooks, and the exact JSON fields of Zoom's
// engagement and user records.
//
// It is test support: the command serves it as `zccadapter sim zoom`,
// and production code never imports it. Like every sim package, it imports
// of this module only the wire vocabulary (events, auth, rcapi), other sim
// packages and the leaves redact and wait; never the node's or the cluster's
// packages. internal/archtest checks both.
package zoom
