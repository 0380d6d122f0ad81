# outbound webhooks (messaging)
messaging-webhook_description_invalid = A descrição pode ter no máximo { $max } caracteres, sem caracteres de controle.
messaging-webhook_endpoint_disabled = Este endpoint de webhook está desativado. Ative-o antes de enviar para ele.
messaging-webhook_endpoint_not_found = Este endpoint de webhook não existe.
messaging-webhook_endpoint_status_invalid = "{ $status }" não é um status de endpoint. Use enabled ou disabled.
messaging-webhook_https_required = Endpoints de webhook precisam usar um endereço https://.
messaging-webhook_message_not_found = Esta mensagem de webhook não existe.
messaging-webhook_payload_too_large = A mensagem de webhook é maior que o limite de { $limit } bytes.
messaging-webhook_rate_limit_invalid = O limite de envio deve ficar entre { $min } e { $max } entregas por segundo.
messaging-webhook_replay_since_invalid = Escolha um horário de início dentro dos últimos { $days } dias.
messaging-webhook_update_mask_invalid = "{ $field }" não pode ser alterado em um endpoint de webhook. Use url, description, event_types ou rate_limit.
messaging-webhook_url_invalid = O endpoint deve ser um endereço http ou https de no máximo { $max } caracteres, sem usuário nem senha.
messaging-webhook_url_refused = Este endereço aponta para uma rede privada e não pode receber webhooks. Use um endereço público.
messaging-webhook_url_unresolvable = O nome do host do endpoint não foi encontrado. Verifique o endereço.
