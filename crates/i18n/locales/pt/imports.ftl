# CSV import and export of contacts (messaging service); contact and field codes are in contacts.ftl.
messaging-import_not_found = A importação não foi encontrada.
messaging-invalid_import_status = O estado da importação deve ser running, succeeded ou failed.
messaging-import_options_first = Envie primeiro as opções de importação, uma única vez, e depois o conteúdo do arquivo.
messaging-import_interrupted = O envio foi interrompido antes do fim do arquivo. Nada foi importado.
messaging-import_abandoned = A importação foi interrompida: o servidor que a executava parou antes de terminar. Nada foi importado; envie o arquivo novamente.
messaging-import_empty = O arquivo está vazio: ele precisa de uma linha de cabeçalho.
messaging-import_too_large = O arquivo passa do limite de { $max } bytes. Nada foi importado.
messaging-import_too_many_rows = O arquivo tem mais de { $max } linhas. Nada foi importado; divida-o em arquivos menores.
messaging-invalid_csv = O arquivo não é um CSV válido.
messaging-invalid_encoding = Esta linha não é texto UTF-8 válido. Salve o arquivo como UTF-8 e tente de novo.
messaging-invalid_mapping = O mapeamento de colunas não é válido (no máximo { $max } colunas, cada uma com um nome de cabeçalho).
messaging-unknown_mapping_target = "{ $target }" não é algo que uma coluna possa preencher: use name, phone, email, language, tags, stage, source, owner_id ou fields.<chave>.
messaging-duplicate_mapping = Duas colunas preenchem { $target } (uma é "{ $header }"); mapeie só uma.
messaging-mapping_needs_identity = Mapeie pelo menos uma coluna para name, phone ou email.
messaging-mapping_header_missing = O arquivo não tem a coluna "{ $header }".
messaging-duplicate_row = Esta linha é a mesma pessoa da linha { $line } do arquivo.
messaging-import_conflict = O telefone e o e-mail desta linha pertencem a dois contatos diferentes; mescle-os primeiro.
