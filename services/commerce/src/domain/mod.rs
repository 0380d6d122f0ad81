//! Types and rules of the commerce service, free of I/O: exact decimal money, exchange rates,
//! pricing rules, sales with profit, commissions, the catalogue, orders, connections.

pub mod catalogue;
pub mod commissions;
pub mod connections;
pub mod dsers;
pub mod money;
pub mod orders;
pub mod payouts;
pub mod pricing;
pub mod rates;
pub mod refunds;
pub mod sales;

#[cfg(test)]
mod fixture_tests;

nexus_kernel::typed_id!(
    /// A supplier or store connection.
    ConnectionId,
    "conn"
);
nexus_kernel::typed_id!(
    /// An imported product.
    ProductId,
    "prod"
);
nexus_kernel::typed_id!(
    /// A product variant.
    VariantId,
    "var"
);
nexus_kernel::typed_id!(
    /// A store order.
    OrderId,
    "ord"
);
nexus_kernel::typed_id!(
    /// A refund of (part of) an order.
    RefundId,
    "rfnd"
);
nexus_kernel::typed_id!(
    /// A sale (`dropshipping_sales`).
    SaleId,
    "sale"
);
nexus_kernel::typed_id!(
    /// A commission earned on a sale.
    CommissionId,
    "com"
);
nexus_kernel::typed_id!(
    /// A pricing or commission rule.
    RuleId,
    "rule"
);
nexus_kernel::typed_id!(
    /// An alert.
    AlertId,
    "alrt"
);
