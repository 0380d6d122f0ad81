# Chrome of published landing pages (the page's own text comes from its sections).
page-skip = انتقل إلى المحتوى
page-benefits = لماذا تختارنا
page-social_proof = ماذا يقول عملاؤنا
page-faq = الأسئلة الشائعة
page-form-heading = تواصل معنا
page-form-name = اسمك
page-form-email = البريد الإلكتروني
page-form-phone = رقم الهاتف
page-form-message = الرسالة
page-form-submit = إرسال
page-form-consent = أوافق على التواصل معي بخصوص طلبي.
page-form-required = الحقول المميزة بعلامة * مطلوبة.
page-form-honeypot = اترك هذا الحقل فارغًا
page-form-thanks = شكرًا لك! استلمنا بياناتك وسنتواصل معك قريبًا.
page-footer = © { $title }. جميع الحقوق محفوظة.
page-image-alt = رسم توضيحي لـ { $title }
