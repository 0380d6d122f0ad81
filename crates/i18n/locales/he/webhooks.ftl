# outbound webhooks (messaging)
messaging-webhook_description_invalid = התיאור יכול להכיל עד { $max } תווים, ללא תווי בקרה.
messaging-webhook_endpoint_disabled = נקודת הקצה של ה-webhook מושבתת. הפעילו אותה לפני שליחה אליה.
messaging-webhook_endpoint_not_found = נקודת הקצה של ה-webhook אינה קיימת.
messaging-webhook_endpoint_status_invalid = "{ $status }" אינו מצב של נקודת קצה. השתמשו ב-enabled או ב-disabled.
messaging-webhook_https_required = נקודות קצה של webhook חייבות להשתמש בכתובת https://‎.
messaging-webhook_message_not_found = הודעת ה-webhook אינה קיימת.
messaging-webhook_payload_too_large = הודעת ה-webhook גדולה מהמגבלה של { $limit } בתים.
messaging-webhook_rate_limit_invalid = מגבלת הקצב חייבת להיות בין { $min } ל-{ $max } משלוחים בשנייה.
messaging-webhook_replay_since_invalid = בחרו שעת התחלה בתוך { $days } הימים האחרונים.
messaging-webhook_update_mask_invalid = לא ניתן לשנות את "{ $field }" בנקודת קצה של webhook. השתמשו ב-url,‏ description,‏ event_types או rate_limit.
messaging-webhook_url_invalid = נקודת הקצה חייבת להיות כתובת http או https של עד { $max } תווים, ללא שם משתמש או סיסמה.
messaging-webhook_url_refused = הכתובת מפנה לרשת פרטית ואינה יכולה לקבל webhooks. השתמשו בכתובת ציבורית.
messaging-webhook_url_unresolvable = שם המארח של נקודת הקצה לא נמצא. בדקו את הכתובת.
