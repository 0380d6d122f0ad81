//! gRPC adapters: proto <-> app conversion. Permission checks live in the use cases; adapters
//! only take the caller's principal from the request.

use std::collections::HashMap;
use std::sync::Arc;

use nexus_kernel::{Currency, Error};
use nexus_platform::grpc::{status, ts};
use nexus_platform::identity::principal;
use nexus_proto::nexus::commerce::v1::{self as pb, commerce_server::Commerce};
use nexus_proto::nexus::webhooks::v1::webhook_receiver_server::WebhookReceiver;
use nexus_proto::nexus::webhooks::v1::{DeliverWebhookRequest, DeliverWebhookResponse};
use rust_decimal::Decimal;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::app::connections::ConnectInput;
use crate::app::monitoring::Report;
use crate::app::orders::NewOrder;
use crate::app::refunds::RefundRequest;
use crate::app::{App, decimal, optional_decimal};
use crate::domain::catalogue::{Product, Search, Variant};
use crate::domain::commissions::{CommissionKind, CommissionRule, CommissionScope, Tier};
use crate::domain::connections::Connection;
use crate::domain::orders::{Customer, Order};
use crate::domain::pricing::{PricingRule, Rounding, Scope};
use crate::domain::refunds::RefundLine;
use crate::domain::{AlertId, ConnectionId, OrderId, ProductId, RefundId, RuleId, SaleId, VariantId};
use crate::repo::alerts::Alert;
use crate::repo::refunds::Refund;
use crate::repo::sales::Sale;
use nexus_platform::grpc::{page_info, page_request as page};

pub struct CommerceService {
    pub app: Arc<App>,
}

pub struct Webhooks {
    pub app: Arc<App>,
}

type R<T> = Result<Response<T>, Status>;

fn amount(value: Decimal, currency: &str) -> Option<pb::Amount> {
    Some(pb::Amount { value: value.normalize().to_string(), currency: currency.to_owned() })
}

/// Money to its currency's minor digits ("12.30", not "12.3").
fn money(value: Decimal, currency: Currency) -> Option<pb::Amount> {
    Some(pb::Amount { value: crate::domain::money::text(value, currency), currency: currency.code().to_owned() })
}

fn money_str(value: Decimal, currency: &str) -> Option<pb::Amount> {
    match currency.parse::<Currency>() {
        Ok(c) => money(value, c),
        Err(_) => amount(value, currency),
    }
}

fn connection(c: Connection) -> pb::Connection {
    pb::Connection {
        id: ConnectionId::from_uuid(c.id).to_string(),
        provider: c.provider.as_str().to_owned(),
        role: c.role.as_str().to_owned(),
        account: c.account,
        status: c.status,
        last_error: c.last_error,
        checked_at: c.checked_at.map(ts),
        token_expires_at: c.token_expires_at.map(ts),
        created_at: Some(ts(c.created_at)),
    }
}

fn variant(v: Variant) -> pb::Variant {
    pb::Variant {
        id: VariantId::from_uuid(v.id).to_string(),
        supplier_variant_id: v.supplier_variant_id,
        sku: v.sku,
        options: v.options.into_iter().collect(),
        cost: amount(v.cost, v.cost_currency.code()),
        price: money(v.price, v.price_currency),
        compare_at: v.compare_at.map(|c| crate::domain::money::text(c, v.price_currency)).unwrap_or_default(),
        rate: v.rate.normalize().to_string(),
        rate_day: v.rate_day.to_string(),
        rate_source: v.rate_source,
        stock: v.stock,
    }
}

fn product(p: Product) -> pb::Product {
    pb::Product {
        id: ProductId::from_uuid(p.id).to_string(),
        connection_id: ConnectionId::from_uuid(p.connection_id).to_string(),
        supplier: p.supplier,
        supplier_product_id: p.supplier_product_id,
        title: p.title,
        description: p.description,
        category: p.category,
        images: p.images,
        status: p.status,
        store_product_id: p.store_product_id.unwrap_or_default(),
        variants: p.variants.into_iter().map(variant).collect(),
        translations: p
            .translations
            .into_iter()
            .map(|t| pb::ProductTranslation {
                language: t.language.code().to_owned(),
                title: t.title,
                description: t.description,
                provider: t.provider,
                model: t.model,
                updated_at: Some(ts(t.updated_at)),
            })
            .collect(),
        created_at: Some(ts(p.created_at)),
        updated_at: Some(ts(p.updated_at)),
    }
}

fn pricing_rule((id, r): (Uuid, PricingRule)) -> pb::PricingRule {
    pb::PricingRule {
        id: RuleId::from_uuid(id).to_string(),
        scope: r.scope.kind().to_owned(),
        scope_ref: r.scope.reference().to_owned(),
        markup_percent: r.markup_percent.normalize().to_string(),
        markup_fixed: r.markup_fixed.normalize().to_string(),
        compare_at_percent: r.compare_at_percent.map(|c| c.normalize().to_string()).unwrap_or_default(),
        rounding: r.rounding.as_str().to_owned(),
        currency: r.currency.code().to_owned(),
        min_margin_percent: r.min_margin_percent.normalize().to_string(),
        max_auto_increase_percent: r.max_auto_increase_percent.normalize().to_string(),
    }
}

fn pricing_input(r: pb::PricingRule, reporting: Currency) -> Result<PricingRule, Error> {
    Ok(PricingRule {
        scope: Scope::parse(r.scope.trim(), &r.scope_ref)?,
        markup_percent: optional_decimal(&r.markup_percent, "markup_percent")?.unwrap_or_default(),
        markup_fixed: optional_decimal(&r.markup_fixed, "markup_fixed")?.unwrap_or_default(),
        compare_at_percent: optional_decimal(&r.compare_at_percent, "compare_at_percent")?,
        rounding: Rounding::parse(r.rounding.trim())?,
        currency: if r.currency.trim().is_empty() { reporting } else { r.currency.trim().parse()? },
        min_margin_percent: optional_decimal(&r.min_margin_percent, "min_margin_percent")?.unwrap_or_default(),
        max_auto_increase_percent: optional_decimal(&r.max_auto_increase_percent, "max_auto_increase_percent")?
            .unwrap_or_default(),
    })
}

fn commission_rule(r: CommissionRule) -> pb::CommissionRule {
    pb::CommissionRule {
        id: RuleId::from_uuid(r.id).to_string(),
        scope: r.scope.kind().to_owned(),
        scope_ref: r.scope.reference().to_owned(),
        beneficiary: r.beneficiary,
        kind: r.kind.as_str().to_owned(),
        value: r.value.normalize().to_string(),
        tiers: r
            .tiers
            .iter()
            .map(|t| pb::Tier { from_orders: t.from_orders, value: t.value.normalize().to_string() })
            .collect(),
        cap: r.cap.map(|c| c.normalize().to_string()).unwrap_or_default(),
        currency: r.currency.code().to_owned(),
    }
}

fn commission_input(r: pb::CommissionRule, reporting: Currency) -> Result<(CommissionRule, bool), Error> {
    let (id, replace) = if r.id.trim().is_empty() {
        (Uuid::now_v7(), false)
    } else {
        (crate::app::id_of::<RuleId>(&r.id, "commerce.rule_not_found", RuleId::as_uuid)?, true)
    };
    let tiers = r
        .tiers
        .iter()
        .map(|t| Ok(Tier { from_orders: t.from_orders, value: decimal(&t.value, "tiers.value")? }))
        .collect::<Result<Vec<_>, Error>>()?;
    Ok((
        CommissionRule {
            id,
            scope: CommissionScope::parse(r.scope.trim(), &r.scope_ref)?,
            beneficiary: r.beneficiary.trim().to_owned(),
            kind: CommissionKind::parse(r.kind.trim())?,
            value: decimal(&r.value, "value")?,
            tiers,
            cap: optional_decimal(&r.cap, "cap")?,
            currency: if r.currency.trim().is_empty() { reporting } else { r.currency.trim().parse()? },
        },
        replace,
    ))
}

fn customer(c: Customer) -> pb::Customer {
    pb::Customer {
        name: c.name,
        email: c.email,
        phone: c.phone,
        address1: c.address1,
        address2: c.address2,
        city: c.city,
        province: c.province,
        zip: c.zip,
        country_code: c.country_code,
    }
}

fn dsers_report(out: crate::app::catalogue::DsersReport) -> pb::DsersImportReport {
    pb::DsersImportReport {
        rows: out.rows,
        imported: out.imported,
        already_imported: out.already_imported,
        errors: out.errors.into_iter().map(|e| pb::DsersRowError { line: e.line, reason: e.reason }).collect(),
    }
}

fn refund(r: Refund, reporting: Currency) -> pb::Refund {
    pb::Refund {
        id: RefundId::from_uuid(r.id).to_string(),
        order_id: OrderId::from_uuid(r.order_id).to_string(),
        status: r.status,
        amount: money_str(r.amount, &r.currency),
        lines: r
            .lines
            .0
            .iter()
            .map(|l| pb::RefundLine { line: u32::try_from(l.line).unwrap_or(u32::MAX), quantity: l.quantity })
            .collect(),
        reason: r.reason,
        store_refund_id: r.store_refund_id.unwrap_or_default(),
        failure: r.failure,
        profit_reversed: money_str(r.profit_reversed, &r.currency),
        reporting_profit_reversed: money(r.reporting_profit_reversed, reporting),
        created_at: Some(ts(r.created_at)),
        completed_at: r.completed_at.map(ts),
    }
}

fn order(o: Order) -> pb::Order {
    let (cur, t) = (o.totals.currency, o.totals);
    pb::Order {
        id: OrderId::from_uuid(o.id).to_string(),
        source: o.source,
        external_id: o.external_id,
        number: o.number,
        status: o.status.as_str().to_owned(),
        subtotal: money(t.subtotal, cur),
        shipping: money(t.shipping, cur),
        taxes: money(t.taxes, cur),
        total: money(t.total, cur),
        customer: Some(customer(o.customer)),
        lines: o
            .lines
            .into_iter()
            .map(|l| pb::OrderLine {
                variant_id: l.variant_id.map(|v| VariantId::from_uuid(v).to_string()).unwrap_or_default(),
                sku: l.sku,
                quantity: l.quantity,
                price: crate::domain::money::text(l.price, cur),
                title: l.title,
            })
            .collect(),
        supplier_order_id: o.supplier_order_id.unwrap_or_default(),
        supplier_pay_url: o.supplier_pay_url.unwrap_or_default(),
        tracking_numbers: o.tracking,
        failure: o.failure,
        created_at: Some(ts(o.created_at)),
        updated_at: Some(ts(o.updated_at)),
    }
}

fn sale(s: Sale) -> pb::Sale {
    let c = s.currency.as_str();
    pb::Sale {
        id: SaleId::from_uuid(s.id).to_string(),
        order_id: OrderId::from_uuid(s.order_id).to_string(),
        revenue: money_str(s.revenue, c),
        product_cost: money_str(s.product_cost, c),
        shipping_cost: money_str(s.shipping_cost, c),
        platform_fee: money_str(s.platform_fee, c),
        payment_fee: money_str(s.payment_fee, c),
        taxes: money_str(s.taxes, c),
        profit: money_str(s.profit, c),
        reporting_revenue: money_str(s.reporting_revenue, &s.reporting_currency),
        reporting_profit: money_str(s.reporting_profit, &s.reporting_currency),
        rate: s.rate.normalize().to_string(),
        rate_day: s.rate_day.to_string(),
        status: s.status,
        paid_at: Some(ts(s.paid_at)),
    }
}

fn alert(a: Alert) -> pb::Alert {
    pb::Alert {
        id: AlertId::from_uuid(a.id).to_string(),
        kind: a.kind,
        subject_id: a.subject_id.to_string(),
        detail_json: a.detail.to_string(),
        created_at: Some(ts(a.created_at)),
        resolved_at: a.resolved_at.map(ts),
    }
}

fn report(r: Report) -> pb::MonitoringReport {
    pb::MonitoringReport {
        variants_checked: r.variants_checked,
        prices_changed: r.prices_changed,
        alerts_raised: r.alerts_raised,
        out_of_stock: r.out_of_stock,
    }
}

#[tonic::async_trait]
impl Commerce for CommerceService {
    async fn create_connection(&self, req: Request<pb::ConnectRequest>) -> R<pb::Connection> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let input = ConnectInput {
            provider: r.provider,
            role: r.role,
            shop_domain: r.shop_domain,
            access_token: r.access_token,
            api_key: r.api_key,
            app_key: r.app_key,
            app_secret: r.app_secret,
            auth_code: r.auth_code,
            languages: r.languages,
        };
        Ok(Response::new(connection(self.app.connect(&p, input).await.map_err(status)?)))
    }

    async fn list_connections(&self, req: Request<pb::ListRequest>) -> R<pb::ConnectionList> {
        let p = principal(&req)?;
        let page_req = page(req.into_inner().page)?;
        let found = self.app.list_connections(&p, &page_req).await.map_err(status)?;
        let page = page_info(&found);
        Ok(Response::new(pb::ConnectionList { connections: found.items.into_iter().map(connection).collect(), page }))
    }

    async fn check_connection(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Connection> {
        let p = principal(&req)?;
        let c = self.app.check_connection(&p, &req.into_inner().id).await.map_err(status)?;
        Ok(Response::new(connection(c)))
    }

    async fn search_catalogue(&self, req: Request<pb::SearchCatalogueRequest>) -> R<pb::CatalogueResults> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let s = Search::parse(&r.keyword, &r.category, &r.min_price, &r.max_price, &r.ship_from, r.page, r.page_size)
            .map_err(status)?;
        let (items, provider) = self.app.search_catalogue(&p, &r.connection_id, &s).await.map_err(status)?;
        Ok(Response::new(pb::CatalogueResults {
            items: items
                .into_iter()
                .map(|i| pb::CatalogueItem {
                    supplier_product_id: i.supplier_product_id,
                    title: i.title,
                    category: i.category,
                    image: i.image,
                    price: money(i.price, i.currency),
                    ship_from: i.ship_from,
                    variants: i.variants,
                })
                .collect(),
            provider,
        }))
    }

    async fn import_product(&self, req: Request<pb::ImportProductRequest>) -> R<pb::Product> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let out =
            self.app.import_product(&p, &r.connection_id, &r.supplier_product_id, &r.currency).await.map_err(status)?;
        Ok(Response::new(product(out)))
    }

    async fn get_product(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Product> {
        let p = principal(&req)?;
        Ok(Response::new(product(self.app.get_product(&p, &req.into_inner().id).await.map_err(status)?)))
    }

    async fn list_products(&self, req: Request<pb::ListRequest>) -> R<pb::ProductList> {
        let p = principal(&req)?;
        let page_req = page(req.into_inner().page)?;
        let found = self.app.list_products(&p, &page_req).await.map_err(status)?;
        let page = page_info(&found);
        Ok(Response::new(pb::ProductList { products: found.items.into_iter().map(product).collect(), page }))
    }

    async fn publish_product(&self, req: Request<pb::PublishProductRequest>) -> R<pb::Product> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let out = self.app.publish_product(&p, &r.product_id, &r.store_connection_id).await.map_err(status)?;
        Ok(Response::new(product(out)))
    }

    async fn localize_product(&self, req: Request<pb::LocalizeProductRequest>) -> R<pb::Product> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let out =
            self.app.localize_product(&p, &r.product_id, &r.languages, &r.source_language).await.map_err(status)?;
        Ok(Response::new(product(out)))
    }

    async fn import_dsers_products(&self, req: Request<pb::DsersImportRequest>) -> R<pb::DsersImportReport> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let out = self.app.import_dsers_products(&p, &r.connection_id, &r.csv, &r.currency).await.map_err(status)?;
        Ok(Response::new(dsers_report(out)))
    }

    async fn import_dsers_orders(&self, req: Request<pb::DsersOrdersImportRequest>) -> R<pb::DsersImportReport> {
        let p = principal(&req)?;
        let out = self.app.import_dsers_orders(&p, &req.into_inner().csv).await.map_err(status)?;
        Ok(Response::new(dsers_report(out)))
    }

    async fn put_pricing_rule(&self, req: Request<pb::PricingRule>) -> R<pb::PricingRule> {
        let p = principal(&req)?;
        let rule = pricing_input(req.into_inner(), self.app.reporting).map_err(status)?;
        Ok(Response::new(pricing_rule(self.app.put_pricing_rule(&p, rule).await.map_err(status)?)))
    }

    async fn list_pricing_rules(&self, req: Request<pb::Empty>) -> R<pb::PricingRuleList> {
        let p = principal(&req)?;
        let rules = self.app.list_pricing_rules(&p).await.map_err(status)?;
        Ok(Response::new(pb::PricingRuleList { rules: rules.into_iter().map(pricing_rule).collect() }))
    }

    async fn delete_pricing_rule(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Empty> {
        let p = principal(&req)?;
        self.app.delete_pricing_rule(&p, &req.into_inner().id).await.map_err(status)?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn run_monitoring(&self, req: Request<pb::Empty>) -> R<pb::MonitoringReport> {
        let p = principal(&req)?;
        Ok(Response::new(report(self.app.run_monitoring(&p).await.map_err(status)?)))
    }

    async fn list_alerts(&self, req: Request<pb::ListRequest>) -> R<pb::AlertList> {
        let p = principal(&req)?;
        let page_req = page(req.into_inner().page)?;
        let found = self.app.list_alerts(&p, &page_req).await.map_err(status)?;
        let page = page_info(&found);
        Ok(Response::new(pb::AlertList { alerts: found.items.into_iter().map(alert).collect(), page }))
    }

    async fn create_order(&self, req: Request<pb::CreateOrderRequest>) -> R<pb::Order> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let c = r.customer.unwrap_or_default();
        let n = NewOrder {
            idempotency_key: r.idempotency_key,
            currency: r.currency,
            customer: Customer {
                name: c.name,
                email: c.email,
                phone: c.phone,
                address1: c.address1,
                address2: c.address2,
                city: c.city,
                province: c.province,
                zip: c.zip,
                country_code: c.country_code,
            },
            lines: r.lines.into_iter().map(|l| (l.variant_id, l.quantity, l.price)).collect(),
            shipping: r.shipping,
            taxes: r.taxes,
            paid: r.paid,
            affiliate: r.affiliate,
        };
        Ok(Response::new(order(self.app.create_order(&p, n).await.map_err(status)?)))
    }

    async fn get_order(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Order> {
        let p = principal(&req)?;
        Ok(Response::new(order(self.app.get_order(&p, &req.into_inner().id).await.map_err(status)?)))
    }

    async fn list_orders(&self, req: Request<pb::ListRequest>) -> R<pb::OrderList> {
        let p = principal(&req)?;
        let page_req = page(req.into_inner().page)?;
        let found = self.app.list_orders(&p, &page_req).await.map_err(status)?;
        let page = page_info(&found);
        Ok(Response::new(pb::OrderList { orders: found.items.into_iter().map(order).collect(), page }))
    }

    async fn fulfil_order(&self, req: Request<pb::FulfilOrderRequest>) -> R<pb::Order> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let o = self
            .app
            .fulfil_order(&p, &r.order_id, &r.supplier_connection_id, &r.logistic_name, &r.pay_with)
            .await
            .map_err(status)?;
        Ok(Response::new(order(o)))
    }

    async fn refund_order(&self, req: Request<pb::GetByIdRequest>) -> R<pb::Order> {
        let p = principal(&req)?;
        Ok(Response::new(order(self.app.refund_order(&p, &req.into_inner().id).await.map_err(status)?)))
    }

    async fn create_refund(&self, req: Request<pb::CreateRefundRequest>) -> R<pb::Refund> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let input = RefundRequest {
            idempotency_key: r.idempotency_key,
            amount: r.amount,
            lines: r
                .lines
                .iter()
                .map(|l| RefundLine { line: usize::try_from(l.line).unwrap_or(usize::MAX), quantity: l.quantity })
                .collect(),
            reason: r.reason,
        };
        let done = self.app.refund(&p, &r.order_id, input).await.map_err(status)?;
        Ok(Response::new(refund(done, self.app.reporting)))
    }

    async fn list_refunds(&self, req: Request<pb::GetByIdRequest>) -> R<pb::RefundList> {
        let p = principal(&req)?;
        let all = self.app.refunds(&p, &req.into_inner().id).await.map_err(status)?;
        Ok(Response::new(pb::RefundList { refunds: all.into_iter().map(|r| refund(r, self.app.reporting)).collect() }))
    }

    async fn list_sales(&self, req: Request<pb::ListRequest>) -> R<pb::SaleList> {
        let p = principal(&req)?;
        let page_req = page(req.into_inner().page)?;
        let found = self.app.list_sales(&p, &page_req).await.map_err(status)?;
        let page = page_info(&found);
        Ok(Response::new(pb::SaleList { sales: found.items.into_iter().map(sale).collect(), page }))
    }

    async fn put_commission_rule(&self, req: Request<pb::CommissionRule>) -> R<pb::CommissionRule> {
        let p = principal(&req)?;
        let (rule, replace) = commission_input(req.into_inner(), self.app.reporting).map_err(status)?;
        Ok(Response::new(commission_rule(self.app.put_commission_rule(&p, rule, replace).await.map_err(status)?)))
    }

    async fn get_payout_statement(&self, req: Request<pb::PayoutStatementRequest>) -> R<pb::PayoutStatement> {
        let p = principal(&req)?;
        let r = req.into_inner();
        let s = self.app.payout_statement(&p, &r.period, &r.beneficiary).await.map_err(status)?;
        let currency = self.app.reporting;
        let csv = crate::domain::payouts::to_csv(&s, currency.code());
        Ok(Response::new(pb::PayoutStatement {
            period: s.period.format("%Y-%m").to_string(),
            currency: currency.code().to_owned(),
            lines: s
                .lines
                .iter()
                .map(|l| pb::PayoutLine {
                    commission_id: crate::domain::CommissionId::from_uuid(l.commission).to_string(),
                    sale_id: SaleId::from_uuid(l.sale).to_string(),
                    beneficiary: l.beneficiary.clone(),
                    kind: l.kind.to_owned(),
                    amount: crate::domain::money::text(l.amount, currency),
                    at: Some(ts(l.at)),
                })
                .collect(),
            totals: s
                .totals
                .iter()
                .map(|(b, t)| pb::PayoutTotal {
                    beneficiary: b.clone(),
                    earned: crate::domain::money::text(t.earned, currency),
                    reversed: crate::domain::money::text(t.reversed, currency),
                    net: crate::domain::money::text(t.net, currency),
                })
                .collect(),
            csv,
        }))
    }

    async fn list_commission_rules(&self, req: Request<pb::Empty>) -> R<pb::CommissionRuleList> {
        let p = principal(&req)?;
        let rules = self.app.list_commission_rules(&p).await.map_err(status)?;
        Ok(Response::new(pb::CommissionRuleList { rules: rules.into_iter().map(commission_rule).collect() }))
    }
}

#[tonic::async_trait]
impl WebhookReceiver for Webhooks {
    async fn deliver(&self, req: Request<DeliverWebhookRequest>) -> R<DeliverWebhookResponse> {
        let r = req.into_inner();
        let headers: HashMap<String, String> =
            r.headers.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
        let answer = self.app.deliver_webhook(&r.provider, &r.method, &headers, &r.body).await.map_err(status)?;
        Ok(Response::new(DeliverWebhookResponse {
            status: answer.status,
            content_type: "application/json".into(),
            body: serde_json::to_vec(&answer.body).unwrap_or_default(),
        }))
    }
}
