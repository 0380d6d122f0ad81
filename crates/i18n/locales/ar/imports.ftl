# CSV import and export of contacts (messaging service); contact and field codes are in contacts.ftl.
messaging-import_not_found = لم يتم العثور على عملية الاستيراد.
messaging-invalid_import_status = يجب أن تكون حالة الاستيراد running أو succeeded أو failed.
messaging-import_options_first = أرسل خيارات الاستيراد أولًا، مرة واحدة، ثم محتوى الملف.
messaging-import_interrupted = انقطع الرفع قبل نهاية الملف. لم يُستورد أي شيء.
messaging-import_abandoned = انقطع الاستيراد: توقف الخادم الذي كان يشغّله قبل أن ينتهي. لم يُستورد أي شيء؛ أرسل الملف مرة أخرى.
messaging-import_empty = الملف فارغ: يحتاج إلى صف عناوين.
messaging-import_too_large = حجم الملف أكبر من الحد البالغ { $max } بايت. لم يُستورد أي شيء.
messaging-import_too_many_rows = يحتوي الملف على أكثر من { $max } صف. لم يُستورد أي شيء؛ قسّمه إلى ملفات أصغر.
messaging-invalid_csv = الملف ليس ملف CSV صالحًا.
messaging-invalid_encoding = هذا الصف ليس نصًا صالحًا بترميز UTF-8. احفظ الملف بترميز UTF-8 وحاول مرة أخرى.
messaging-invalid_mapping = ربط الأعمدة غير صالح ({ $max } عمودًا على الأكثر، لكل منها اسم عنوان).
messaging-unknown_mapping_target = "{ $target }" ليس شيئًا يمكن للعمود تعبئته: استخدم name أو phone أو email أو language أو tags أو stage أو source أو owner_id أو fields.<المفتاح>.
messaging-duplicate_mapping = عمودان يعبئان { $target } (أحدهما "{ $header }")؛ اربط عمودًا واحدًا فقط.
messaging-mapping_needs_identity = اربط عمودًا واحدًا على الأقل بـ name أو phone أو email.
messaging-mapping_header_missing = لا يحتوي الملف على العمود "{ $header }".
messaging-duplicate_row = هذا الصف هو الشخص نفسه في السطر { $line } من الملف.
messaging-import_conflict = رقم الهاتف والبريد الإلكتروني في هذا الصف يخصان جهتي اتصال مختلفتين؛ ادمجهما أولًا.
