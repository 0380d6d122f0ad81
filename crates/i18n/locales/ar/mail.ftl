mail-footer = تلقيت هذه الرسالة لأن لديك حسابًا على NexusOne. إذا لم تكن أنت من قام بذلك، فيمكنك تجاهلها.

mail-verify_email-subject = أكّد عنوان بريدك الإلكتروني
mail-verify_email-body =
    مرحبًا { $name }،

    أكّد عنوان بريدك الإلكتروني على NexusOne بفتح هذا الرابط:
    { $link }

    يبقى الرابط صالحًا لمدة { $hours } ساعة.

    فريق NexusOne

mail-reset_password-subject = إعادة تعيين كلمة المرور
mail-reset_password-body =
    مرحبًا { $name }،

    تلقّينا طلبًا لإعادة تعيين كلمة مرور حسابك على NexusOne. افتح هذا الرابط لاختيار كلمة مرور جديدة:
    { $link }

    يبقى الرابط صالحًا لمدة { $minutes } دقيقة. إذا لم تطلب ذلك، فتجاهل هذه الرسالة؛ ستبقى كلمة المرور كما هي.

    فريق NexusOne

mail-invite-subject = دعوة من { $inviter } للانضمام إلى { $workspace } على NexusOne
mail-invite-body =
    مرحبًا،

    وصلتك دعوة من { $inviter } للانضمام إلى مساحة العمل { $workspace } على NexusOne بصفة { $role }. اقبل الدعوة من هنا:
    { $link }

    تبقى الدعوة صالحة لمدة { $days } يومًا.

    فريق NexusOne

mail-password_changed-subject = تم تغيير كلمة المرور
mail-password_changed-body =
    مرحبًا { $name }،

    تم تغيير كلمة مرور حسابك على NexusOne، وتم تسجيل الخروج من جلساتك الأخرى.

    إذا لم تقم بذلك، فأعد تعيين كلمة المرور الآن:
    { $link }

    فريق NexusOne

mail-account_locked-subject = تم حظر محاولات تسجيل الدخول
mail-account_locked-body =
    مرحبًا { $name }،

    أوقفنا تسجيل الدخول إلى حسابك على NexusOne لمدة { $minutes } دقيقة بعد محاولات فاشلة كثيرة جدًا.

    إذا لم تكن هذه المحاولات منك، فننصحك بتغيير كلمة المرور:
    { $link }

    فريق NexusOne

mail-mfa_enabled-subject = تم تفعيل التحقق بخطوتين
mail-mfa_enabled-body =
    مرحبًا { $name }،

    تم تفعيل التحقق بخطوتين لحسابك على NexusOne.

    احتفظ برموز الاسترداد في مكان آمن.

    فريق NexusOne

mail-account_deletion-subject = طلب حذف حسابك
mail-account_deletion-body =
    مرحبًا { $name }،

    تلقّينا طلبك لحذف حسابك على NexusOne. ستُمحى بياناتك خلال { $days } يومًا.

    إذا لم تقدّم هذا الطلب، فتواصل مع الدعم فورًا.

    فريق NexusOne

mail-identity_linked-subject = تم ربط طريقة تسجيل دخول بحسابك
mail-identity_linked-body =
    مرحبًا { $name }،

    تم ربط { $provider } بحسابك في NexusOne: يمكنك الآن تسجيل الدخول به.

    إن لم تكن أنت من فعل ذلك، فأزله من إعدادات الأمان وغيّر كلمة المرور:
    { $link }

    فريق NexusOne

mail-webhook_disabled-subject = تم إيقاف نقطة نهاية webhook
mail-webhook_disabled-body =
    مرحبًا { $name }،

    توقفنا عن إرسال الأحداث إلى نقطة نهاية webhook هذه في مساحة العمل الخاصة بك:
    { $url }

    السبب: { $reason }.

    أصلح النظام المستقبِل، ثم أعد تفعيل نقطة النهاية من هنا:
    { $link }

    فريق NexusOne

# الأسباب المذكورة في mail-webhook_disabled-body.
mail-webhook_disabled-reason-failing = فشلت كل عمليات التسليم لمدة خمسة أيام

mail-ads_post_failed-subject = تعذّر نشر منشور على { $platform } في الحساب { $account }
mail-ads_post_failed-body =
    مرحبًا { $name }،

    تعذّر علينا نشر منشور مجدول على { $platform } في هذا الحساب:
    { $account }

    رفضت المنصة المنشور وذكرت ما يلي:
    { $reason }

    لن نعيد المحاولة من تلقاء أنفسنا. راجع المنشور وأعد جدولته من هنا:
    { $link }

    فريق NexusOne

mail-ads_account_paused-subject = أعد ربط { $provider } لاستئناف منشوراتك المجدولة
mail-ads_account_paused-body =
    مرحبًا { $name }،

    لم يعد الحساب على { $provider } يقبل صلاحية الوصول التي منحتها مساحة العمل لـ NexusOne، لذا أوقفنا مؤقتًا المنشورات المجدولة على هذا الاتصال. ستبقى مجدولة ولن يضيع شيء.

    ردّ المنصة:
    { $reason }

    أعد ربط { $provider } من هنا، وسيُستأنف النشر من حيث توقف:
    { $link }

    فريق NexusOne

role-owner = مالك
role-admin = مسؤول
role-member = عضو
role-viewer = مُشاهد
