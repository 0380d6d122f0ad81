# Chrome of published landing pages (the page's own text comes from its sections).
page-skip = Pular para o conteúdo
page-benefits = Por que nos escolher
page-social_proof = O que nossos clientes dizem
page-faq = Perguntas frequentes
page-form-heading = Fale com a gente
page-form-name = Seu nome
page-form-email = E-mail
page-form-phone = Telefone
page-form-message = Mensagem
page-form-submit = Enviar
page-form-consent = Concordo em ser contatado sobre o meu pedido.
page-form-required = Os campos marcados com * são obrigatórios.
page-form-honeypot = Deixe este campo em branco
page-form-thanks = Obrigado! Recebemos seus dados e retornaremos em breve.
page-footer = © { $title }. Todos os direitos reservados.
page-image-alt = Ilustração de { $title }
