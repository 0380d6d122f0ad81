# outbound webhooks (messaging)
messaging-webhook_description_invalid = The description may have at most { $max } characters, without control characters.
messaging-webhook_endpoint_disabled = This webhook endpoint is disabled. Enable it before sending to it.
messaging-webhook_endpoint_not_found = This webhook endpoint does not exist.
messaging-webhook_endpoint_status_invalid = "{ $status }" is not an endpoint status. Use enabled or disabled.
messaging-webhook_https_required = Webhook endpoints must use an https:// address.
messaging-webhook_message_not_found = This webhook message does not exist.
messaging-webhook_payload_too_large = The webhook message is larger than the limit of { $limit } bytes.
messaging-webhook_rate_limit_invalid = The rate limit must be between { $min } and { $max } deliveries per second.
messaging-webhook_replay_since_invalid = Choose a start time within the last { $days } days.
messaging-webhook_update_mask_invalid = "{ $field }" cannot be changed on a webhook endpoint. Use url, description, event_types or rate_limit.
messaging-webhook_url_invalid = The endpoint must be an http or https address of at most { $max } characters, without a user name or password.
messaging-webhook_url_refused = This address points inside a private network and cannot receive webhooks. Use a public address.
messaging-webhook_url_unresolvable = The endpoint's host name could not be found. Please check the address.
