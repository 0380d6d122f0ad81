# CSV import and export of contacts (messaging service); contact and field codes are in contacts.ftl.
messaging-import_not_found = The import was not found.
messaging-invalid_import_status = The import status must be running, succeeded or failed.
messaging-import_options_first = Send the import options first, once, and then the file's contents.
messaging-import_interrupted = The upload was interrupted before the file ended. Nothing was imported.
messaging-import_abandoned = The import was interrupted: the server running it stopped before it finished. Nothing was imported; send the file again.
messaging-import_empty = The file is empty: it needs a header row.
messaging-import_too_large = The file is larger than the limit of { $max } bytes. Nothing was imported.
messaging-import_too_many_rows = The file has more than { $max } rows. Nothing was imported; split it into smaller files.
messaging-invalid_csv = The file is not valid CSV.
messaging-invalid_encoding = This row is not valid UTF-8 text. Save the file as UTF-8 and try again.
messaging-invalid_mapping = The column mapping is not valid (at most { $max } columns, each with a header name).
messaging-unknown_mapping_target = "{ $target }" is not something a column can fill: use name, phone, email, language, tags, stage, source, owner_id or fields.<key>.
messaging-duplicate_mapping = Two columns fill { $target } (one is "{ $header }"); map only one.
messaging-mapping_needs_identity = Map at least one column to name, phone or email.
messaging-mapping_header_missing = The file has no column "{ $header }".
messaging-duplicate_row = This row is the same person as line { $line } of the file.
messaging-import_conflict = The phone number and the email address of this row belong to two different contacts; merge them first.
