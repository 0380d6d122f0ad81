# Email templates. Subjects are one line; bodies are multi-line plain text (blank lines inside
# an indented value are kept as paragraph breaks). `mail-footer` goes below every body.
mail-footer = You received this email because of your NexusOne account. If this was not you, you can ignore it.

mail-verify_email-subject = Confirm your email address
mail-verify_email-body =
    Hi { $name },

    Confirm your email address for NexusOne by opening this link:
    { $link }

    The link works for { $hours } hours.

    The NexusOne team

mail-reset_password-subject = Reset your password
mail-reset_password-body =
    Hi { $name },

    Someone asked to reset the password of your NexusOne account. Open this link to choose a new one:
    { $link }

    The link works for { $minutes } minutes. If it was not you, ignore this email; your password stays the same.

    The NexusOne team

mail-invite-subject = { $inviter } invited you to { $workspace } on NexusOne
mail-invite-body =
    Hi,

    { $inviter } invited you to join the workspace { $workspace } on NexusOne as { $role }. Accept the invitation here:
    { $link }

    The invitation works for { $days } days.

    The NexusOne team

mail-password_changed-subject = Your password was changed
mail-password_changed-body =
    Hi { $name },

    The password of your NexusOne account was changed, and your other sessions were signed out.

    If this was not you, reset your password now:
    { $link }

    The NexusOne team

mail-account_locked-subject = Sign-in attempts blocked
mail-account_locked-body =
    Hi { $name },

    We blocked sign-in to your NexusOne account for { $minutes } minutes after too many failed attempts.

    If this was not you, consider changing your password:
    { $link }

    The NexusOne team

mail-mfa_enabled-subject = Two-step verification is on
mail-mfa_enabled-body =
    Hi { $name },

    Two-step verification was turned on for your NexusOne account.

    Keep your recovery codes somewhere safe.

    The NexusOne team

mail-account_deletion-subject = Your account deletion request
mail-account_deletion-body =
    Hi { $name },

    We received your request to delete your NexusOne account. Your data will be erased within { $days } days.

    If this was not you, contact support right away.

    The NexusOne team

mail-identity_linked-subject = A sign-in method was linked to your account
mail-identity_linked-body =
    Hi { $name },

    { $provider } was linked to your NexusOne account: you can now sign in with it.

    If this was not you, remove it in your security settings and change your password:
    { $link }

    The NexusOne team

mail-webhook_disabled-subject = A webhook endpoint was turned off
mail-webhook_disabled-body =
    Hi { $name },

    We stopped sending events to this webhook endpoint of your workspace:
    { $url }

    Why: { $reason }.

    Fix the receiving side, then turn the endpoint back on here:
    { $link }

    The NexusOne team

# Reasons named in mail-webhook_disabled-body.
mail-webhook_disabled-reason-failing = every delivery failed for five days

mail-ads_post_failed-subject = Your post was not published on { $platform } ({ $account })
mail-ads_post_failed-body =
    Hi { $name },

    A scheduled post could not be published on { $platform }, on this account:
    { $account }

    The platform turned it down with this message:
    { $reason }

    We won't try again on our own. Review the post and schedule it again here:
    { $link }

    The NexusOne team

mail-ads_account_paused-subject = Reconnect { $provider } to resume your scheduled posts
mail-ads_account_paused-body =
    Hi { $name },

    { $provider } no longer accepts the access your workspace gave NexusOne, so we paused the posts scheduled on this connection. They stay scheduled; nothing is lost.

    What the platform said:
    { $reason }

    Connect { $provider } again here, and publishing picks up where it stopped:
    { $link }

    The NexusOne team

# Role names, as used inside mail-invite-body.
role-owner = owner
role-admin = admin
role-member = member
role-viewer = viewer
