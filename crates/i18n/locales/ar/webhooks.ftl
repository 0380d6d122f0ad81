# outbound webhooks (messaging)
messaging-webhook_description_invalid = يمكن أن يحتوي الوصف على { $max } حرفًا كحد أقصى، دون أحرف تحكم.
messaging-webhook_endpoint_disabled = نقطة نهاية الـ webhook هذه معطّلة. فعّلها قبل الإرسال إليها.
messaging-webhook_endpoint_not_found = نقطة نهاية الـ webhook هذه غير موجودة.
messaging-webhook_endpoint_status_invalid = "{ $status }" ليست حالة لنقطة نهاية. استخدم enabled أو disabled.
messaging-webhook_https_required = يجب أن تستخدم نقاط نهاية الـ webhook عنوان https://‎.
messaging-webhook_message_not_found = رسالة الـ webhook هذه غير موجودة.
messaging-webhook_payload_too_large = رسالة الـ webhook أكبر من الحد البالغ { $limit } بايت.
messaging-webhook_rate_limit_invalid = يجب أن يكون حد المعدل بين { $min } و{ $max } عملية تسليم في الثانية.
messaging-webhook_replay_since_invalid = اختر وقت بدء خلال آخر { $days } يومًا.
messaging-webhook_update_mask_invalid = لا يمكن تغيير "{ $field }" في نقطة نهاية webhook. استخدم url أو description أو event_types أو rate_limit.
messaging-webhook_url_invalid = يجب أن تكون نقطة النهاية عنوان http أو https من { $max } حرفًا كحد أقصى، دون اسم مستخدم أو كلمة مرور.
messaging-webhook_url_refused = يشير هذا العنوان إلى شبكة خاصة ولا يمكنه استقبال الـ webhooks. استخدم عنوانًا عامًا.
messaging-webhook_url_unresolvable = تعذّر العثور على اسم المضيف لنقطة النهاية. يرجى التحقق من العنوان.
