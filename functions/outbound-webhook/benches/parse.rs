//! Parse + validate of a 100-notification outbound message, beside raw quick-xml tokenization
//! (namespace resolution included) of the same bytes: the parser's overhead over the tokenizer.
//!
//! `cargo bench -p outbound-webhook --bench parse`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use quick_xml::NsReader;
use quick_xml::events::Event;

fn message(n: usize) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n <soapenv:Body>\n  <notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\">\n   <OrganizationId>00D5g000000AbCdEAK</OrganizationId>\n   <ActionId>04k5g000000XyZaAAB</ActionId>\n   <SessionId xsi:nil=\"true\"/>\n   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/64.0/00D5g000000AbCd</EnterpriseUrl>\n   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/64.0/00D5g000000AbCd</PartnerUrl>\n",
    );
    for i in 0..n {
        s.push_str(&format!(
            "   <Notification>\n    <Id>04l5g00000A{i:05}AA1</Id>\n    <sObject xsi:type=\"sf:Contact\" xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\">\n     <sf:Id>0035g00000Q{i:05}AA2</sf:Id>\n     <sf:Email>person{i}@example.com</sf:Email>\n     <sf:FirstName>Ana &amp; Bo</sf:FirstName>\n     <sf:LastName>Silva</sf:LastName>\n     <sf:MobilePhone xsi:nil=\"true\"/>\n     <sf:Survey_Opt_In__c>true</sf:Survey_Opt_In__c>\n     <sf:SystemModstamp>2026-03-01T10:15:00.000Z</sf:SystemModstamp>\n    </sObject>\n   </Notification>\n"
        ));
    }
    s.push_str("  </notifications>\n </soapenv:Body>\n</soapenv:Envelope>\n");
    s
}

/// Every event, namespaces resolved, nothing kept.
fn tokenize(bytes: &[u8]) -> usize {
    let mut r = NsReader::from_reader(bytes);
    let mut n = 0usize;
    loop {
        match r.read_resolved_event() {
            Ok((_, Event::Eof)) => return n,
            Ok(_) => n += 1,
            Err(_) => return n,
        }
    }
}

fn bench(c: &mut Criterion) {
    let body = message(100);
    assert_eq!(outbound_webhook::soap::parse(body.as_bytes()).map(|m| m.notifications.len()).ok(), Some(100));
    let mut g = c.benchmark_group("outbound_100_notifications");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("parse_and_validate", |b| {
        b.iter(|| outbound_webhook::soap::parse(black_box(body.as_bytes())).map(|m| m.notifications.len()))
    });
    g.bench_function("quick_xml_tokenize", |b| b.iter(|| tokenize(black_box(body.as_bytes()))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
