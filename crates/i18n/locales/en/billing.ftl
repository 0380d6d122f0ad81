# Credits, plans and billing.
subscriptions-invalid_idempotency_key = The idempotency key must be 1 to 255 characters long.
subscriptions-unknown_feature = "{ $feature }" is not a feature of any plan.
subscriptions-unknown_action = "{ $action }" is not a priced action.
subscriptions-invalid_amount = The number of credits or units is not valid.
subscriptions-invalid_ttl = A reservation can be held for at most { $max } seconds.
subscriptions-reservation_not_found = This credit reservation does not exist.
subscriptions-reservation_closed = This credit reservation is already { $status }.
subscriptions-commit_exceeds_reservation = You cannot charge more than the { $reserved } credits reserved.
subscriptions-limit_reached = Your plan allows { $limit } of "{ $feature }" this month. Upgrade your plan to do more.
subscriptions-payment_failed = The payment did not go through. Check your payment method and try again.
