-- The scheduler's own bookkeeping on a post target (its lease, claim fence, next try, progress
-- checkpoints, the moment a publish call was sent) and the engagement figures the sync refreshes
-- change many times per publish and every few hours after it. They are not changes anyone made
-- to the post: they are left out of the audit images, so an update touching only them records no
-- audit event, while every change of status, schedule, text, result or error still does.
SELECT enable_tenant_table('social_post_targets', ARRAY[
    'next_at', 'claimed_until', 'claims', 'progress', 'sent_at', 'updated_at',
    'likes', 'comments', 'shares', 'views', 'engagement_at']);
