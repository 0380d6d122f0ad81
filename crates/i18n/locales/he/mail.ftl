mail-footer = קיבלתם את האימייל הזה כי יש לכם חשבון ב-NexusOne. אם לא אתם ביצעתם את הפעולה, אפשר להתעלם ממנו.

mail-verify_email-subject = אשרו את כתובת האימייל שלכם
mail-verify_email-body =
    שלום { $name },

    כדי לאשר את כתובת האימייל שלכם ב-NexusOne, פתחו את הקישור הזה:
    { $link }

    הקישור תקף למשך { $hours } שעות.

    צוות NexusOne

mail-reset_password-subject = איפוס הסיסמה
mail-reset_password-body =
    שלום { $name },

    התקבלה בקשה לאפס את הסיסמה של החשבון שלכם ב-NexusOne. פתחו את הקישור הזה כדי לבחור סיסמה חדשה:
    { $link }

    הקישור תקף למשך { $minutes } דקות. אם לא אתם ביקשתם את האיפוס, התעלמו מהאימייל הזה; הסיסמה שלכם לא תשתנה.

    צוות NexusOne

mail-invite-subject = הזמנה מאת { $inviter } לסביבת העבודה { $workspace } ב-NexusOne
mail-invite-body =
    שלום,

    קיבלתם הזמנה מאת { $inviter } להצטרף לסביבת העבודה { $workspace } ב-NexusOne בתפקיד { $role }. כדי לקבל את ההזמנה, פתחו את הקישור:
    { $link }

    ההזמנה תקפה למשך { $days } ימים.

    צוות NexusOne

mail-password_changed-subject = הסיסמה שלכם שונתה
mail-password_changed-body =
    שלום { $name },

    הסיסמה של החשבון שלכם ב-NexusOne שונתה, וכל שאר ההתחברויות לחשבון נותקו.

    אם לא אתם שיניתם אותה, אפסו את הסיסמה עכשיו:
    { $link }

    צוות NexusOne

mail-account_locked-subject = ניסיונות ההתחברות נחסמו
mail-account_locked-body =
    שלום { $name },

    חסמנו את ההתחברות לחשבון שלכם ב-NexusOne למשך { $minutes } דקות אחרי יותר מדי ניסיונות כושלים.

    אם לא אתם ניסיתם להתחבר, מומלץ לשנות את הסיסמה:
    { $link }

    צוות NexusOne

mail-mfa_enabled-subject = האימות הדו-שלבי הופעל
mail-mfa_enabled-body =
    שלום { $name },

    האימות הדו-שלבי הופעל בחשבון שלכם ב-NexusOne.

    שמרו את קודי השחזור במקום בטוח.

    צוות NexusOne

mail-account_deletion-subject = הבקשה למחיקת החשבון שלכם
mail-account_deletion-body =
    שלום { $name },

    קיבלנו את הבקשה שלכם למחוק את החשבון ב-NexusOne. הנתונים שלכם יימחקו תוך { $days } ימים.

    אם לא אתם שלחתם את הבקשה, פנו מיד לתמיכה.

    צוות NexusOne

mail-identity_linked-subject = שיטת התחברות נקשרה לחשבון שלכם
mail-identity_linked-body =
    שלום { $name },

    { $provider } נקשר לחשבון NexusOne שלכם: מעכשיו אפשר להתחבר באמצעותו.

    אם לא אתם עשיתם זאת, הסירו אותו בהגדרות האבטחה ושנו את הסיסמה:
    { $link }

    צוות NexusOne

mail-webhook_disabled-subject = נקודת קצה של webhook הושבתה
mail-webhook_disabled-body =
    שלום { $name },

    הפסקנו לשלוח אירועים לנקודת הקצה הזו של webhook בסביבת העבודה שלכם:
    { $url }

    הסיבה: { $reason }.

    תקנו את המערכת המקבלת, ואז הפעילו מחדש את נקודת הקצה כאן:
    { $link }

    צוות NexusOne

# סיבות שמופיעות ב-mail-webhook_disabled-body.
mail-webhook_disabled-reason-failing = כל המשלוחים נכשלו במשך חמישה ימים

mail-ads_post_failed-subject = פוסט לא פורסם ב-{ $platform } בחשבון { $account }
mail-ads_post_failed-body =
    שלום { $name },

    לא הצלחנו לפרסם פוסט מתוזמן ב-{ $platform }, בחשבון הזה:
    { $account }

    הפלטפורמה דחתה אותו עם ההודעה הזו:
    { $reason }

    לא ננסה שוב מעצמנו. בדקו את הפוסט ותזמנו אותו מחדש כאן:
    { $link }

    צוות NexusOne

mail-ads_account_paused-subject = חברו מחדש את { $provider } כדי שהפוסטים המתוזמנים יפורסמו
mail-ads_account_paused-body =
    שלום { $name },

    החשבון ב-{ $provider } כבר לא מקבל את ההרשאה שסביבת העבודה שלכם נתנה ל-NexusOne, ולכן השהינו את הפוסטים המתוזמנים בחיבור הזה. הם נשארים מתוזמנים, ושום דבר לא אבד.

    מה שהפלטפורמה השיבה:
    { $reason }

    חברו את { $provider } מחדש כאן, והפרסום ימשיך מהמקום שבו נעצר:
    { $link }

    צוות NexusOne

role-owner = בעלים
role-admin = מנהל
role-member = חבר צוות
role-viewer = צופה
