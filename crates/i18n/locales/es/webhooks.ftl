# outbound webhooks (messaging)
messaging-webhook_description_invalid = La descripción puede tener como máximo { $max } caracteres, sin caracteres de control.
messaging-webhook_endpoint_disabled = Este endpoint de webhook está desactivado. Actívalo antes de enviarle mensajes.
messaging-webhook_endpoint_not_found = Este endpoint de webhook no existe.
messaging-webhook_endpoint_status_invalid = "{ $status }" no es un estado de endpoint. Usa enabled o disabled.
messaging-webhook_https_required = Los endpoints de webhook deben usar una dirección https://.
messaging-webhook_message_not_found = Este mensaje de webhook no existe.
messaging-webhook_payload_too_large = El mensaje de webhook supera el límite de { $limit } bytes.
messaging-webhook_rate_limit_invalid = El límite de envíos debe estar entre { $min } y { $max } entregas por segundo.
messaging-webhook_replay_since_invalid = Elige una hora de inicio dentro de los últimos { $days } días.
messaging-webhook_update_mask_invalid = "{ $field }" no se puede cambiar en un endpoint de webhook. Usa url, description, event_types o rate_limit.
messaging-webhook_url_invalid = El endpoint debe ser una dirección http o https de como máximo { $max } caracteres, sin usuario ni contraseña.
messaging-webhook_url_refused = Esta dirección apunta a una red privada y no puede recibir webhooks. Usa una dirección pública.
messaging-webhook_url_unresolvable = No se encontró el nombre de host del endpoint. Revisa la dirección.
