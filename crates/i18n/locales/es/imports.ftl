# CSV import and export of contacts (messaging service); contact and field codes are in contacts.ftl.
messaging-import_not_found = No se encontró la importación.
messaging-invalid_import_status = El estado de la importación debe ser running, succeeded o failed.
messaging-import_options_first = Envía primero las opciones de importación, una sola vez, y después el contenido del archivo.
messaging-import_interrupted = La subida se interrumpió antes de terminar el archivo. No se importó nada.
messaging-import_abandoned = La importación se interrumpió: el servidor que la ejecutaba se detuvo antes de terminar. No se importó nada; vuelve a enviar el archivo.
messaging-import_empty = El archivo está vacío: necesita una fila de encabezado.
messaging-import_too_large = El archivo supera el límite de { $max } bytes. No se importó nada.
messaging-import_too_many_rows = El archivo tiene más de { $max } filas. No se importó nada; divídelo en archivos más pequeños.
messaging-invalid_csv = El archivo no es un CSV válido.
messaging-invalid_encoding = Esta fila no es texto UTF-8 válido. Guarda el archivo como UTF-8 e inténtalo de nuevo.
messaging-invalid_mapping = La asignación de columnas no es válida (como máximo { $max } columnas, cada una con un nombre de encabezado).
messaging-unknown_mapping_target = "{ $target }" no es algo que una columna pueda llenar: usa name, phone, email, language, tags, stage, source, owner_id o fields.<clave>.
messaging-duplicate_mapping = Dos columnas llenan { $target } (una es "{ $header }"); asigna solo una.
messaging-mapping_needs_identity = Asigna al menos una columna a name, phone o email.
messaging-mapping_header_missing = El archivo no tiene la columna "{ $header }".
messaging-duplicate_row = Esta fila es la misma persona que la línea { $line } del archivo.
messaging-import_conflict = El teléfono y el correo de esta fila pertenecen a dos contactos distintos; combínalos primero.
