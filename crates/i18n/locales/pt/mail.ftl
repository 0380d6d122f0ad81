mail-footer = Você recebeu este e-mail porque tem uma conta no NexusOne. Se não foi você, pode ignorar esta mensagem.

mail-verify_email-subject = Confirme seu endereço de e-mail
mail-verify_email-body =
    Olá, { $name },

    Confirme seu endereço de e-mail no NexusOne abrindo este link:
    { $link }

    O link é válido por { $hours } horas.

    Equipe NexusOne

mail-reset_password-subject = Redefina sua senha
mail-reset_password-body =
    Olá, { $name },

    Recebemos um pedido para redefinir a senha da sua conta do NexusOne. Abra este link para escolher uma nova:
    { $link }

    O link é válido por { $minutes } minutos. Se não foi você, ignore este e-mail; sua senha continua a mesma.

    Equipe NexusOne

mail-invite-subject = { $inviter } convidou você para { $workspace } no NexusOne
mail-invite-body =
    Olá!

    { $inviter } convidou você para participar do espaço de trabalho { $workspace } no NexusOne como { $role }. Aceite o convite aqui:
    { $link }

    O convite é válido por { $days } dias.

    Equipe NexusOne

mail-password_changed-subject = Sua senha foi alterada
mail-password_changed-body =
    Olá, { $name },

    A senha da sua conta do NexusOne foi alterada e suas outras sessões foram encerradas.

    Se não foi você, redefina sua senha agora mesmo:
    { $link }

    Equipe NexusOne

mail-account_locked-subject = Tentativas de login bloqueadas
mail-account_locked-body =
    Olá, { $name },

    Bloqueamos o login na sua conta do NexusOne por { $minutes } minutos depois de muitas tentativas sem sucesso.

    Se não foi você, recomendamos trocar sua senha:
    { $link }

    Equipe NexusOne

mail-mfa_enabled-subject = A verificação em duas etapas está ativada
mail-mfa_enabled-body =
    Olá, { $name },

    A verificação em duas etapas foi ativada na sua conta do NexusOne.

    Guarde seus códigos de recuperação em um lugar seguro.

    Equipe NexusOne

mail-account_deletion-subject = Sua solicitação de exclusão de conta
mail-account_deletion-body =
    Olá, { $name },

    Recebemos sua solicitação para excluir sua conta do NexusOne. Seus dados serão apagados em até { $days } dias.

    Se não foi você, fale com o suporte imediatamente.

    Equipe NexusOne

mail-identity_linked-subject = Um método de login foi vinculado à sua conta
mail-identity_linked-body =
    Olá, { $name },

    { $provider } foi vinculado à sua conta NexusOne: agora você pode entrar com ele.

    Se não foi você, remova-o nas configurações de segurança e troque sua senha:
    { $link }

    Equipe NexusOne

mail-webhook_disabled-subject = Um endpoint de webhook foi desativado
mail-webhook_disabled-body =
    Olá, { $name },

    Paramos de enviar eventos para este endpoint de webhook do seu espaço de trabalho:
    { $url }

    Motivo: { $reason }.

    Corrija o sistema que recebe e reative o endpoint aqui:
    { $link }

    Equipe NexusOne

# Motivos citados em mail-webhook_disabled-body.
mail-webhook_disabled-reason-failing = todas as entregas falharam durante cinco dias

mail-ads_post_failed-subject = Seu post não foi publicado no { $platform } ({ $account })
mail-ads_post_failed-body =
    Olá, { $name },

    Não conseguimos publicar um post agendado no { $platform }, nesta conta:
    { $account }

    A plataforma recusou o post com esta mensagem:
    { $reason }

    Não vamos tentar de novo por conta própria. Revise o post e agende-o outra vez aqui:
    { $link }

    Equipe NexusOne

mail-ads_account_paused-subject = Conecte de novo sua conta { $provider } para retomar os posts agendados
mail-ads_account_paused-body =
    Olá, { $name },

    Sua conta { $provider } deixou de aceitar o acesso que seu espaço de trabalho concedeu ao NexusOne, então pausamos os posts agendados nesta conexão. Eles continuam agendados; nada foi perdido.

    Resposta da plataforma:
    { $reason }

    Conecte sua conta { $provider } de novo aqui, e as publicações continuam de onde pararam:
    { $link }

    Equipe NexusOne

role-owner = proprietário
role-admin = administrador
role-member = membro
role-viewer = leitor
