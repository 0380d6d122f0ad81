# CSV import and export of contacts (messaging service); contact and field codes are in contacts.ftl.
messaging-import_not_found = הייבוא לא נמצא.
messaging-invalid_import_status = מצב הייבוא חייב להיות running, succeeded או failed.
messaging-import_options_first = שלחו קודם את אפשרויות הייבוא, פעם אחת, ואחר כך את תוכן הקובץ.
messaging-import_interrupted = ההעלאה נקטעה לפני סוף הקובץ. דבר לא יובא.
messaging-import_abandoned = הייבוא נקטע: השרת שהריץ אותו נעצר לפני שהסתיים. שום דבר לא יובא; שלחו את הקובץ שוב.
messaging-import_empty = הקובץ ריק: נדרשת בו שורת כותרת.
messaging-import_too_large = הקובץ גדול מהמגבלה של { $max } בתים. דבר לא יובא.
messaging-import_too_many_rows = בקובץ יותר מ-{ $max } שורות. דבר לא יובא; פצלו אותו לקבצים קטנים יותר.
messaging-invalid_csv = הקובץ אינו CSV תקין.
messaging-invalid_encoding = השורה הזו אינה טקסט UTF-8 תקין. שמרו את הקובץ כ-UTF-8 ונסו שוב.
messaging-invalid_mapping = מיפוי העמודות אינו תקין (לכל היותר { $max } עמודות, לכל אחת שם כותרת).
messaging-unknown_mapping_target = "{ $target }" אינו משהו שעמודה יכולה למלא: השתמשו ב-name, phone, email, language, tags, stage, source, owner_id או fields.<מפתח>.
messaging-duplicate_mapping = שתי עמודות ממלאות את { $target } (אחת מהן היא "{ $header }"); מפו רק אחת.
messaging-mapping_needs_identity = מפו לפחות עמודה אחת ל-name, phone או email.
messaging-mapping_header_missing = אין בקובץ עמודה "{ $header }".
messaging-duplicate_row = השורה הזו היא אותו אדם כמו שורה { $line } בקובץ.
messaging-import_conflict = הטלפון והדוא"ל בשורה הזו שייכים לשני אנשי קשר שונים; מזגו אותם קודם.
