# Chrome of published landing pages (the page's own text comes from its sections).
page-skip = דלגו לתוכן
page-benefits = למה לבחור בנו
page-social_proof = מה הלקוחות שלנו אומרים
page-faq = שאלות נפוצות
page-form-heading = צרו קשר
page-form-name = השם שלכם
page-form-email = כתובת אימייל
page-form-phone = מספר טלפון
page-form-message = הודעה
page-form-submit = שליחה
page-form-consent = אני מסכים/ה שייצרו איתי קשר בנוגע לפנייה.
page-form-required = שדות המסומנים ב-* הם חובה.
page-form-honeypot = השאירו את השדה הזה ריק
page-form-thanks = תודה! קיבלנו את הפרטים שלכם ונחזור אליכם בקרוב.
page-footer = © { $title }. כל הזכויות שמורות.
page-image-alt = איור עבור { $title }
