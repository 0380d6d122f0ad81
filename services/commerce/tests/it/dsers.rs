//! DSers order exports: rows grouped into orders, lines matched to imported variants by SKU,
//! paid orders recorded as sales, unusable rows reported by line, a re-import creating nothing
//! twice, and a file that cannot be read refused whole.

use nexus_proto::nexus::commerce::v1 as pb;

use crate::support::{Service, code};

#[tokio::test]
async fn an_order_export_is_imported_once_with_bad_rows_reported() {
    let s = Service::start().await;
    let admin = s.admin();
    let mut c = s.client().await;
    let supplier = s.connect_local(&admin, "supplier").await;
    let search =
        pb::SearchCatalogueRequest { connection_id: supplier.id.clone(), keyword: "mug".into(), ..Default::default() };
    let item = c.search_catalogue(admin.req(search)).await.unwrap().into_inner().items.remove(0);
    let import = pb::ImportProductRequest {
        connection_id: supplier.id.clone(),
        supplier_product_id: item.supplier_product_id,
        currency: "USD".into(),
    };
    let product = c.import_product(admin.req(import)).await.unwrap().into_inner();
    let sku = product.variants[0].sku.clone();
    let csv = format!(
        "Order No.,Order Date,Customer Name,Email,Product Title,SKU,Quantity,Price,Currency,Shipping Cost,Payment Status\n\
         #2001,2026-11-02 10:00:00,Ana Silva,ana@example.com,Mug,{sku},2,9.90,USD,3.00,paid\n\
         #2001,2026-11-02 10:00:00,Ana Silva,ana@example.com,Lamp,NOT-OURS,1,25.00,USD,3.00,paid\n\
         #2002,2026-11-03,Bo Lee,,Mug,{sku},1,9.90,USD,,pending\n\
         #2003,2026-11-03,Cy,,Mug,{sku},lots,9.90,USD,,paid\n"
    );
    let req = || pb::DsersOrdersImportRequest { csv: csv.clone().into_bytes() };
    let report = c.import_dsers_orders(admin.req(req())).await.unwrap().into_inner();
    assert_eq!((report.rows, report.imported, report.already_imported), (4, 2, 0));
    let errors: Vec<u64> = report.errors.iter().map(|e| e.line).collect();
    assert_eq!(errors, [5], "{:?}", report.errors);

    let orders = c.list_orders(admin.req(Default::default())).await.unwrap().into_inner().orders;
    assert_eq!(orders.len(), 2);
    let first = orders.iter().find(|o| o.number == "#2001").unwrap();
    assert_eq!((first.source.as_str(), first.status.as_str()), ("dsers", "paid"));
    assert_eq!(first.total.as_ref().unwrap().value, "47.80");
    assert_eq!(first.lines[0].variant_id, product.variants[0].id, "matched by SKU");
    assert!(first.lines[1].variant_id.is_empty());
    assert_eq!(orders.iter().find(|o| o.number == "#2002").unwrap().status, "pending");
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.dropshipping_sales").await, 1);
    assert_eq!(s.events("commerce.order.created").await, 2);

    // The same file again: nothing new.
    let again = c.import_dsers_orders(admin.req(req())).await.unwrap().into_inner();
    assert_eq!((again.imported, again.already_imported), (0, 2));
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.orders").await, 2);
    assert_eq!(s.events("commerce.order.created").await, 2);

    // Another workspace imports its own copy; ours is untouched and its SKUs are not its own.
    let other = s.admin();
    let theirs = c.import_dsers_orders(other.req(req())).await.unwrap().into_inner();
    assert_eq!(theirs.imported, 2);
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.orders").await, 4);
    let their_orders = c.list_orders(other.req(Default::default())).await.unwrap().into_inner().orders;
    assert!(their_orders.iter().all(|o| o.lines.iter().all(|l| l.variant_id.is_empty())));

    // Files that cannot be read change nothing.
    for bad in [b"Name,Price\nMug,1\n".to_vec(), vec![0xff, 0xfe, 0x00], vec![b'a'; 5 * 1024 * 1024 + 1]] {
        let e = c.import_dsers_orders(admin.req(pb::DsersOrdersImportRequest { csv: bad })).await.unwrap_err();
        assert_eq!(code(&e), "commerce.dsers_file_invalid");
    }
    let viewer = s.as_role(&admin, nexus_platform::identity::Role::Viewer);
    let e = c.import_dsers_orders(viewer.req(req())).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.orders").await, 4);
}
