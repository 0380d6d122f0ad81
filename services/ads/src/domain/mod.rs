//! Types and rules of the ads service, free of I/O: platform connections and their accounts,
//! campaigns.

pub mod audiences;
pub mod builder;
pub mod campaigns;
pub mod connections;
pub mod ical;
pub mod media;
pub mod post_import;
pub mod posts;

nexus_kernel::typed_id!(
    /// A platform connection.
    ConnectionId,
    "conn"
);
nexus_kernel::typed_id!(
    /// A marketing campaign (the umbrella).
    CampaignId,
    "cmp"
);
nexus_kernel::typed_id!(
    /// An ad campaign build (the saga creating it on a platform).
    BuildId,
    "build"
);
nexus_kernel::typed_id!(
    /// A custom audience uploaded to a platform.
    AudienceId,
    "aud"
);
nexus_kernel::typed_id!(
    /// A social post (published on one or more accounts).
    PostId,
    "post"
);
nexus_kernel::typed_id!(
    /// One publication of a post on one account.
    PostTargetId,
    "pubn"
);
nexus_kernel::typed_id!(
    /// A picture or video of the workspace's media library, for posts.
    MediaId,
    "media"
);
nexus_kernel::typed_id!(
    /// A read-only iCal feed of the post calendar.
    FeedId,
    "feed"
);
