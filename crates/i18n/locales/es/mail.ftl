mail-footer = Has recibido este correo porque tienes una cuenta de NexusOne. Si no has sido tú, puedes ignorarlo.

mail-verify_email-subject = Confirma tu dirección de correo electrónico
mail-verify_email-body =
    Hola, { $name }:

    Confirma tu dirección de correo electrónico en NexusOne abriendo este enlace:
    { $link }

    El enlace es válido durante { $hours } horas.

    El equipo de NexusOne

mail-reset_password-subject = Restablece tu contraseña
mail-reset_password-body =
    Hola, { $name }:

    Alguien ha solicitado restablecer la contraseña de tu cuenta de NexusOne. Abre este enlace para elegir una nueva:
    { $link }

    El enlace es válido durante { $minutes } minutos. Si no has sido tú, ignora este correo; tu contraseña seguirá siendo la misma.

    El equipo de NexusOne

mail-invite-subject = { $inviter } te ha invitado a { $workspace } en NexusOne
mail-invite-body =
    ¡Hola!

    { $inviter } te ha invitado a unirte al espacio de trabajo { $workspace } en NexusOne como { $role }. Acepta la invitación aquí:
    { $link }

    La invitación es válida durante { $days } días.

    El equipo de NexusOne

mail-password_changed-subject = Se ha cambiado tu contraseña
mail-password_changed-body =
    Hola, { $name }:

    Se ha cambiado la contraseña de tu cuenta de NexusOne y se han cerrado tus demás sesiones.

    Si no has sido tú, restablece tu contraseña ahora mismo:
    { $link }

    El equipo de NexusOne

mail-account_locked-subject = Intentos de inicio de sesión bloqueados
mail-account_locked-body =
    Hola, { $name }:

    Hemos bloqueado el inicio de sesión en tu cuenta de NexusOne durante { $minutes } minutos tras demasiados intentos fallidos.

    Si no has sido tú, te recomendamos cambiar la contraseña:
    { $link }

    El equipo de NexusOne

mail-mfa_enabled-subject = La verificación en dos pasos está activada
mail-mfa_enabled-body =
    Hola, { $name }:

    Se ha activado la verificación en dos pasos en tu cuenta de NexusOne.

    Guarda tus códigos de recuperación en un lugar seguro.

    El equipo de NexusOne

mail-account_deletion-subject = Tu solicitud de eliminación de cuenta
mail-account_deletion-body =
    Hola, { $name }:

    Hemos recibido tu solicitud para eliminar tu cuenta de NexusOne. Tus datos se borrarán en un plazo de { $days } días.

    Si no has sido tú, ponte en contacto con el equipo de soporte cuanto antes.

    El equipo de NexusOne

mail-identity_linked-subject = Se vinculó un método de inicio de sesión a tu cuenta
mail-identity_linked-body =
    Hola, { $name }:

    Se vinculó { $provider } a tu cuenta de NexusOne: ahora puedes iniciar sesión con él.

    Si no fuiste tú, quítalo en la configuración de seguridad y cambia tu contraseña:
    { $link }

    El equipo de NexusOne

mail-webhook_disabled-subject = Se desactivó un endpoint de webhook
mail-webhook_disabled-body =
    Hola, { $name }:

    Dejamos de enviar eventos a este endpoint de webhook de tu espacio de trabajo:
    { $url }

    Motivo: { $reason }.

    Corrige el sistema receptor y vuelve a activar el endpoint aquí:
    { $link }

    El equipo de NexusOne

# Motivos que nombra mail-webhook_disabled-body.
mail-webhook_disabled-reason-failing = todas las entregas fallaron durante cinco días

mail-ads_post_failed-subject = Tu publicación no salió en { $platform } ({ $account })
mail-ads_post_failed-body =
    Hola, { $name }:

    No pudimos publicar en { $platform } una de tus publicaciones programadas, en esta cuenta:
    { $account }

    La plataforma la rechazó con este mensaje:
    { $reason }

    No volveremos a intentarlo por nuestra cuenta. Revisa la publicación y prográmala de nuevo aquí:
    { $link }

    El equipo de NexusOne

mail-ads_account_paused-subject = Vuelve a conectar { $provider } para reanudar tus publicaciones programadas
mail-ads_account_paused-body =
    Hola, { $name }:

    { $provider } ya no acepta el acceso que tu espacio de trabajo le dio a NexusOne, así que pausamos las publicaciones programadas en esta conexión. Siguen programadas y no se ha perdido nada.

    Esto respondió la plataforma:
    { $reason }

    Vuelve a conectar { $provider } aquí y la publicación seguirá donde se detuvo:
    { $link }

    El equipo de NexusOne

role-owner = propietario
role-admin = administrador
role-member = miembro
role-viewer = lector
