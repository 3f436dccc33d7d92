"""Deterministic sample corpus of Indonesian textbook PDFs for local runs and tests.

Real textbook PDFs are large and licensed, so the pipeline needs a small stand-in that still exercises
every awkward case the ingestion steps must handle:

* a running header ("Buku Siswa <Mapel> Kelas X - Kurikulum Merdeka") and a "Halaman N" footer on every
  text page, for header/footer removal;
* words hyphenated across a line end ("infor-" / "matika" in ``informatika/kelas_10`` and "fotosin-" /
  "tesis" in ``biologi/kelas_11``), so the extracted text really contains ``-\\n`` for de-hyphenation;
* a ruled table (last page of ``informatika/kelas_10/buku_siswa_informatika_kelas_10.pdf``);
* an image-only "scanned" page without any text layer (last page of
  ``matematika/kelas_10/buku_siswa_matematika_kelas_10.pdf``), for OCR / empty-page handling;
* exactly one broken file, ``biologi/kelas_11/rusak.pdf``: the first few hundred bytes of a real PDF, cut
  off in the middle of its first page object (a typical interrupted download): extraction reports it as
  ``truncated`` (no %%EOF marker), and error handling / quarantine paths have something to catch.

Only ``pymupdf`` and the standard library are used; no Dagster imports, so tests can call it directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nexus_assets.lib.ingest.mupdf import pymupdf

__all__ = ["BROKEN_SAMPLE", "SAMPLE_PARTITIONS", "generate_sample_corpus"]

# --- page geometry (A4 in points) -------------------------------------------------------------------------
_PAGE_W, _PAGE_H = 595.0, 842.0
_MARGIN_X = 56.0
_TEXT_W = _PAGE_W - 2 * _MARGIN_X
_BODY_TOP, _BODY_BOTTOM = 78.0, 790.0
_BODY_FONT, _BODY_SIZE, _BODY_LEADING = "helv", 10.5, 14.5
_BOLD_FONT = "hebo"
_GREY = (0.35, 0.35, 0.35)
# Fixed metadata dates: the corpus must not change between runs.
_PDF_DATE = "D:20240715080000+07'00'"
# Marks a forced hyphenated line break inside a word ("infor|matika" -> "infor-\nmatika").
_HYPHEN_MARK = "|"


@dataclass(frozen=True)
class _Topic:
    title: str
    terms: tuple[str, str, str]
    sentences: tuple[str, ...]


@dataclass(frozen=True)
class _Book:
    subject: str
    grade: str
    filename: str
    kind: str
    subject_label: str
    grade_label: str
    topics: tuple[_Topic, ...]
    extra: str | None = None  # "table" or "scan": one extra special page at the end

    @property
    def header(self) -> str:
        return f"{self.kind} {self.subject_label} {self.grade_label} - Kurikulum Merdeka"


# --- content --------------------------------------------------------------------------------------------
_INFORMATIKA_10 = (
    _Topic(
        "Berpikir Komputasional",
        ("dekomposisi", "pengenalan pola", "abstraksi"),
        (
            "Berpikir komputasional adalah cara memecahkan persoalan dengan langkah yang sistematis sehingga "
            "solusinya dapat dijalankan oleh manusia maupun komputer.",
            "Kemampuan ini menjadi fondasi mata pelajaran infor|matika karena hampir semua materi lain "
            "berangkat dari cara berpikir yang sama.",
            "Dekomposisi berarti memecah persoalan besar menjadi bagian-bagian kecil yang lebih mudah "
            "diselesaikan satu per satu.",
            "Pengenalan pola membantu kita menemukan kesamaan di antara beberapa persoalan sehingga solusi "
            "lama dapat digunakan kembali.",
            "Abstraksi dilakukan dengan mengabaikan detail yang tidak penting dan hanya mempertahankan "
            "informasi yang benar-benar dibutuhkan.",
            "Langkah terakhir adalah menyusun algoritma, yaitu urutan instruksi yang jelas, terbatas, dan "
            "dapat diikuti tanpa menimbulkan keraguan.",
            "Soal-soal Bebras yang dilombakan setiap tahun merupakan contoh latihan berpikir komputasional "
            "tanpa harus menggunakan komputer.",
            "Ketika menyusun jadwal piket kelas, kamu sebenarnya sedang melakukan dekomposisi dan abstraksi "
            "terhadap data nama siswa dan hari sekolah.",
        ),
    ),
    _Topic(
        "Algoritma dan Pemrograman",
        ("pseudocode", "diagram alir", "perulangan"),
        (
            "Algoritma dapat dituliskan dalam bahasa sehari-hari, dalam pseudocode, atau digambarkan dengan "
            "diagram alir.",
            "Pseudocode menyerupai bahasa pemrograman tetapi tidak terikat pada aturan penulisan bahasa "
            "tertentu sehingga mudah dibaca.",
            "Diagram alir menggunakan simbol standar seperti oval untuk awal dan akhir, persegi panjang "
            "untuk proses, dan belah ketupat untuk keputusan.",
            "Struktur percabangan memungkinkan program memilih tindakan berdasarkan suatu kondisi, misalnya "
            "menentukan lulus atau tidaknya siswa dari nilai ujian.",
            "Struktur perulangan menjalankan sekumpulan instruksi berkali-kali selama kondisi tertentu masih "
            "terpenuhi.",
            "Variabel digunakan untuk menyimpan nilai sementara, dan setiap variabel memiliki tipe data "
            "seperti bilangan bulat, pecahan, teks, atau nilai logika.",
            "Program yang baik tidak hanya benar, tetapi juga efisien dan mudah dipahami oleh programmer "
            "lain yang membacanya.",
            "Kesalahan dalam program disebut bug, dan proses menemukan serta memperbaikinya dikenal sebagai debugging.",
        ),
    ),
    _Topic(
        "Jaringan Komputer dan Internet",
        ("topologi jaringan", "alamat IP", "protokol TCP/IP"),
        (
            "Jaringan komputer adalah sekumpulan perangkat yang saling terhubung sehingga dapat berbagi "
            "data dan sumber daya.",
            "Berdasarkan jangkauannya, jaringan dibedakan menjadi LAN untuk satu gedung, MAN untuk satu "
            "kota, dan WAN untuk wilayah yang sangat luas.",
            "Topologi jaringan menggambarkan cara perangkat dihubungkan, misalnya topologi bus, cincin, "
            "bintang, dan mesh.",
            "Pada topologi bintang, setiap komputer terhubung ke satu switch pusat sehingga kerusakan satu "
            "kabel tidak memutus seluruh jaringan.",
            "Setiap perangkat di internet dikenali melalui alamat IP, misalnya 192.168.1.10 pada jaringan "
            "lokal sekolah.",
            "Protokol TCP/IP mengatur cara data dipecah menjadi paket, dikirim melalui router, lalu disusun "
            "kembali di komputer tujuan.",
            "Layanan DNS menerjemahkan nama domain seperti kemdikbud.go.id menjadi alamat IP yang dipahami "
            "oleh komputer.",
            "Koneksi nirkabel menggunakan gelombang radio sehingga perlu dilindungi dengan kata sandi dan "
            "enkripsi WPA2 atau WPA3.",
        ),
    ),
    _Topic(
        "Sistem Komputer",
        ("perangkat keras", "sistem operasi", "memori utama"),
        (
            "Sistem komputer terdiri atas perangkat keras, perangkat lunak, dan pengguna yang saling bekerja sama.",
            "Unit pemrosesan pusat atau CPU menjalankan instruksi program melalui siklus ambil, dekode, dan eksekusi.",
            "Memori utama atau RAM menyimpan data yang sedang diproses, tetapi isinya hilang ketika "
            "komputer dimatikan.",
            "Media penyimpanan seperti SSD dan hard disk menyimpan data secara permanen dengan kapasitas "
            "yang jauh lebih besar daripada RAM.",
            "Sistem operasi mengelola perangkat keras, mengatur pembagian waktu prosesor, dan menyediakan "
            "antarmuka bagi pengguna.",
            "Contoh sistem operasi yang banyak digunakan adalah Windows, Linux, Android, dan macOS.",
            "Perangkat masukan seperti papan ketik dan mouse mengirim data ke komputer, sedangkan monitor "
            "dan printer menampilkan hasil pengolahan.",
            "Semua data di dalam komputer direpresentasikan dalam bilangan biner yang hanya terdiri atas "
            "angka 0 dan 1.",
        ),
    ),
)

_INFORMATIKA_10_MODUL = (
    _Topic(
        "Analisis Data dengan Lembar Kerja",
        ("lembar kerja", "fungsi agregat", "visualisasi data"),
        (
            "Lembar kerja elektronik menyusun data dalam baris dan kolom sehingga mudah diurutkan, disaring, "
            "dan dihitung.",
            "Setiap sel memiliki alamat yang terdiri atas huruf kolom dan nomor baris, misalnya B4.",
            "Fungsi agregat seperti SUM, AVERAGE, MIN, dan MAX merangkum banyak nilai menjadi satu angka.",
            "Fungsi COUNTIF menghitung banyaknya sel yang memenuhi kriteria tertentu, misalnya jumlah siswa "
            "yang nilainya di atas 75.",
            "Sebelum dianalisis, data perlu dibersihkan dari duplikasi, salah ketik, dan sel kosong.",
            "Visualisasi data dengan diagram batang atau diagram garis membantu pembaca melihat tren dengan cepat.",
            "Pilih jenis grafik sesuai tujuan: diagram lingkaran untuk proporsi dan diagram garis untuk "
            "perubahan dari waktu ke waktu.",
        ),
    ),
    _Topic(
        "Literasi Digital dan Keamanan Data",
        ("jejak digital", "kata sandi", "hoaks"),
        (
            "Literasi digital adalah kemampuan menggunakan teknologi secara cerdas, aman, dan bertanggung jawab.",
            "Setiap aktivitas di internet meninggalkan jejak digital yang dapat ditelusuri bertahun-tahun kemudian.",
            "Kata sandi yang kuat terdiri atas paling sedikit dua belas karakter yang memadukan huruf, "
            "angka, dan simbol.",
            "Autentikasi dua faktor menambahkan lapisan keamanan berupa kode sekali pakai yang dikirim ke ponsel.",
            "Hoaks sering memakai judul yang memancing emosi, sehingga pembaca perlu memeriksa sumber dan "
            "tanggal berita.",
            "Phishing adalah upaya mencuri data pribadi dengan menyamar sebagai lembaga tepercaya melalui "
            "surel atau pesan singkat.",
            "Data pribadi seperti nomor induk kependudukan dan alamat rumah tidak boleh dibagikan di media sosial.",
        ),
    ),
    _Topic(
        "Dampak Sosial Informatika",
        ("ekonomi digital", "kesenjangan digital", "hak kekayaan intelektual"),
        (
            "Perkembangan informatika mengubah cara manusia belajar, bekerja, berbelanja, dan berkomunikasi.",
            "Ekonomi digital membuka peluang usaha baru, misalnya toko daring dan layanan transportasi "
            "berbasis aplikasi.",
            "Kesenjangan digital terjadi ketika sebagian masyarakat belum memiliki akses internet atau "
            "keterampilan menggunakan teknologi.",
            "Program penyediaan internet di daerah terdepan, terluar, dan tertinggal bertujuan mengurangi "
            "kesenjangan tersebut.",
            "Hak kekayaan intelektual melindungi karya cipta seperti perangkat lunak, musik, dan tulisan "
            "dari penggunaan tanpa izin.",
            "Lisensi perangkat lunak bebas memperbolehkan pengguna mempelajari, mengubah, dan membagikan kode sumber.",
            "Otomatisasi dapat menggantikan sebagian pekerjaan rutin sekaligus menciptakan profesi baru di "
            "bidang teknologi.",
        ),
    ),
    _Topic(
        "Praktik Lintas Bidang",
        ("proyek kelompok", "kebutuhan pengguna", "prototipe"),
        (
            "Praktik lintas bidang mengajak siswa menerapkan seluruh materi informatika dalam sebuah proyek nyata.",
            "Proyek dimulai dengan mengidentifikasi masalah di lingkungan sekitar, misalnya antrean kantin "
            "yang terlalu panjang.",
            "Tim kemudian mewawancarai calon pengguna untuk memahami kebutuhan pengguna secara rinci.",
            "Berdasarkan kebutuhan tersebut, tim merancang prototipe sederhana berupa sketsa layar atau program kecil.",
            "Prototipe diuji coba kepada beberapa pengguna, lalu diperbaiki berdasarkan masukan yang diterima.",
            "Pembagian peran dalam proyek kelompok, seperti analis, perancang, dan penguji, membuat "
            "pekerjaan lebih teratur.",
            "Hasil akhir proyek dipresentasikan beserta dokumentasi proses, kendala, dan rencana pengembangan.",
        ),
    ),
)

_INFORMATIKA_11 = (
    _Topic(
        "Struktur Data",
        ("larik", "tumpukan", "antrean"),
        (
            "Struktur data adalah cara menyimpan dan mengatur data di dalam memori agar dapat diakses secara efisien.",
            "Larik atau array menyimpan elemen bertipe sama secara berurutan dan setiap elemen diakses melalui indeks.",
            "Pada kebanyakan bahasa pemrograman, indeks larik dimulai dari nol sehingga elemen pertama "
            "berada pada indeks 0.",
            "Tumpukan atau stack bekerja dengan prinsip LIFO, yaitu data yang terakhir masuk menjadi yang "
            "pertama keluar.",
            "Fitur undo pada pengolah kata merupakan contoh penerapan tumpukan dalam kehidupan sehari-hari.",
            "Antrean atau queue bekerja dengan prinsip FIFO sehingga data yang pertama masuk akan dilayani "
            "lebih dahulu.",
            "Senarai berantai menyimpan elemen dalam simpul-simpul yang saling menunjuk sehingga penyisipan "
            "data tidak perlu menggeser elemen lain.",
            "Pemilihan struktur data yang tepat dapat membuat program berjalan ratusan kali lebih cepat.",
        ),
    ),
    _Topic(
        "Basis Data Relasional",
        ("tabel", "kunci primer", "SQL"),
        (
            "Basis data adalah kumpulan data yang terorganisasi sehingga mudah disimpan, dicari, dan diperbarui.",
            "Pada basis data relasional, data disimpan dalam tabel yang terdiri atas baris atau record dan "
            "kolom atau field.",
            "Kunci primer adalah kolom yang nilainya unik untuk setiap baris, misalnya NISN pada tabel siswa.",
            "Kunci tamu menghubungkan dua tabel, misalnya kolom kode_kelas pada tabel siswa yang merujuk ke "
            "tabel kelas.",
            "Bahasa SQL digunakan untuk mengelola basis data melalui perintah seperti SELECT, INSERT, "
            "UPDATE, dan DELETE.",
            "Perintah SELECT nama FROM siswa WHERE kelas = 'XI-2' menampilkan nama semua siswa di kelas tersebut.",
            "Normalisasi mengurangi pengulangan data sehingga basis data lebih hemat ruang dan bebas dari anomali.",
            "Sistem manajemen basis data yang populer antara lain MySQL, PostgreSQL, dan SQLite.",
        ),
    ),
    _Topic(
        "Fungsi dan Rekursi",
        ("parameter", "nilai kembalian", "rekursi"),
        (
            "Fungsi adalah blok program bernama yang melakukan tugas tertentu dan dapat dipanggil berulang kali.",
            "Dengan fungsi, program besar dapat dipecah menjadi bagian kecil yang lebih mudah diuji dan dipelihara.",
            "Parameter adalah nilai masukan yang diterima fungsi, sedangkan nilai kembalian adalah hasil "
            "yang dikirim kembali kepada pemanggil.",
            "Rekursi terjadi ketika sebuah fungsi memanggil dirinya sendiri untuk menyelesaikan versi "
            "persoalan yang lebih kecil.",
            "Setiap fungsi rekursif wajib memiliki kasus dasar agar pemanggilan berhenti dan tidak berjalan "
            "tanpa akhir.",
            "Perhitungan faktorial, misalnya 5! = 5 x 4 x 3 x 2 x 1 = 120, sering dijadikan contoh pertama rekursi.",
            "Barisan Fibonacci juga dapat dihitung secara rekursif, tetapi versi sederhananya sangat lambat "
            "untuk suku yang besar.",
            "Teknik memoisasi menyimpan hasil perhitungan sebelumnya sehingga rekursi tidak mengulang "
            "pekerjaan yang sama.",
        ),
    ),
    _Topic(
        "Keamanan Jaringan dan Kriptografi",
        ("enkripsi", "firewall", "kunci publik"),
        (
            "Keamanan jaringan bertujuan menjaga kerahasiaan, keutuhan, dan ketersediaan data yang dikirim "
            "melalui jaringan.",
            "Firewall menyaring lalu lintas data berdasarkan aturan tertentu sehingga akses yang "
            "mencurigakan dapat diblokir.",
            "Enkripsi mengubah pesan asli menjadi teks sandi yang hanya dapat dibaca oleh pihak yang memiliki kunci.",
            "Sandi Caesar adalah contoh kriptografi klasik yang menggeser setiap huruf sejauh beberapa "
            "posisi dalam alfabet.",
            "Kriptografi modern menggunakan pasangan kunci publik dan kunci privat untuk bertukar pesan secara aman.",
            "Protokol HTTPS memanfaatkan enkripsi sehingga data yang dikirim ke situs web tidak dapat dibaca "
            "oleh penyadap.",
            "Serangan DDoS membanjiri server dengan permintaan palsu hingga layanan tidak dapat diakses pengguna lain.",
            "Pembaruan perangkat lunak secara rutin menutup celah keamanan yang sudah diketahui oleh penyerang.",
        ),
    ),
)

_MATEMATIKA_10 = (
    _Topic(
        "Eksponen dan Logaritma",
        ("bilangan berpangkat", "sifat eksponen", "logaritma"),
        (
            "Bilangan berpangkat a^n menyatakan perkalian bilangan a sebanyak n kali, dengan a disebut basis "
            "dan n disebut eksponen.",
            "Salah satu sifat eksponen adalah a^m x a^n = a^(m+n) untuk setiap bilangan real a yang tidak nol.",
            "Setiap bilangan tidak nol yang dipangkatkan nol bernilai satu, sehingga 7^0 = 1.",
            "Pangkat negatif menyatakan kebalikan, misalnya 2^(-3) sama dengan 1/8.",
            "Logaritma merupakan kebalikan dari eksponen: jika a^c = b, maka log basis a dari b sama dengan c.",
            "Sebagai contoh, log basis 2 dari 32 bernilai 5 karena 2^5 = 32.",
            "Fungsi eksponen digunakan untuk memodelkan pertumbuhan bakteri, bunga majemuk, dan peluruhan "
            "zat radioaktif.",
            "Skala Richter untuk gempa bumi dan skala pH untuk keasaman larutan disusun menggunakan logaritma.",
        ),
    ),
    _Topic(
        "Sistem Persamaan Linear Tiga Variabel",
        ("eliminasi", "substitusi", "himpunan penyelesaian"),
        (
            "Sistem persamaan linear tiga variabel terdiri atas tiga persamaan dengan variabel x, y, dan z "
            "yang berpangkat satu.",
            "Himpunan penyelesaian sistem tersebut adalah pasangan nilai (x, y, z) yang memenuhi ketiga "
            "persamaan sekaligus.",
            "Metode substitusi dilakukan dengan menyatakan satu variabel dalam variabel lain, lalu "
            "menyisipkannya ke persamaan berikutnya.",
            "Metode eliminasi menghilangkan satu variabel dengan menjumlahkan atau mengurangkan dua "
            "persamaan yang telah disetarakan koefisiennya.",
            "Dalam praktik, gabungan eliminasi dan substitusi sering menjadi cara tercepat untuk mendapatkan jawaban.",
            "Misalnya, harga tiga jenis buah dapat ditentukan dari tiga catatan belanja yang berbeda kombinasinya.",
            "Sebuah sistem dapat memiliki tepat satu penyelesaian, tak hingga banyak penyelesaian, atau "
            "tidak memiliki penyelesaian.",
            "Hasil perhitungan selalu perlu diperiksa kembali dengan menyisipkan nilai x, y, dan z ke persamaan awal.",
        ),
    ),
    _Topic(
        "Fungsi Kuadrat",
        ("parabola", "titik puncak", "diskriminan"),
        (
            "Fungsi kuadrat memiliki bentuk umum f(x) = ax^2 + bx + c dengan a tidak sama dengan nol.",
            "Grafik fungsi kuadrat berbentuk parabola yang terbuka ke atas jika a positif dan terbuka ke "
            "bawah jika a negatif.",
            "Titik puncak parabola terletak pada x = -b/(2a) dan merupakan nilai minimum atau maksimum fungsi.",
            "Sumbu simetri adalah garis tegak yang melalui titik puncak dan membagi parabola menjadi dua "
            "bagian yang sama.",
            "Diskriminan D = b^2 - 4ac menentukan banyaknya titik potong grafik dengan sumbu-x.",
            "Jika D positif, parabola memotong sumbu-x di dua titik; jika D nol, parabola menyinggung sumbu-x.",
            "Lintasan bola yang dilempar ke atas dapat dimodelkan dengan fungsi kuadrat terhadap waktu.",
            "Akar-akar persamaan kuadrat dapat dicari dengan pemfaktoran, melengkapkan kuadrat sempurna, "
            "atau rumus kuadratik.",
        ),
    ),
    _Topic(
        "Trigonometri",
        ("sinus", "kosinus", "tangen"),
        (
            "Trigonometri mempelajari hubungan antara besar sudut dan panjang sisi pada segitiga.",
            "Pada segitiga siku-siku, sinus sudut adalah perbandingan sisi depan dengan sisi miring.",
            "Kosinus sudut adalah perbandingan sisi samping dengan sisi miring, sedangkan tangen adalah "
            "perbandingan sisi depan dengan sisi samping.",
            "Nilai sudut istimewa perlu dihafal, misalnya sin 30 derajat = 1/2 dan cos 60 derajat = 1/2.",
            "Identitas dasar sin^2 x + cos^2 x = 1 berlaku untuk setiap besar sudut x.",
            "Aturan sinus dan aturan kosinus digunakan untuk menghitung sisi segitiga yang bukan siku-siku.",
            "Juru ukur tanah memakai trigonometri untuk menentukan tinggi gedung dari jarak dan sudut elevasi.",
            "Sudut elevasi diukur dari garis mendatar ke atas, sedangkan sudut depresi diukur dari garis "
            "mendatar ke bawah.",
        ),
    ),
)

_MATEMATIKA_11 = (
    _Topic(
        "Komposisi Fungsi dan Fungsi Invers",
        ("domain", "komposisi fungsi", "fungsi invers"),
        (
            "Fungsi adalah relasi yang memasangkan setiap anggota domain dengan tepat satu anggota kodomain.",
            "Komposisi fungsi (f o g)(x) berarti fungsi g dikerjakan lebih dahulu, kemudian hasilnya "
            "dimasukkan ke fungsi f.",
            "Komposisi fungsi pada umumnya tidak bersifat komutatif, sehingga (f o g)(x) belum tentu sama "
            "dengan (g o f)(x).",
            "Fungsi invers membalik kerja suatu fungsi, sehingga jika f(a) = b maka invers f memetakan b kembali ke a.",
            "Sebuah fungsi hanya memiliki invers jika fungsi tersebut bijektif, yaitu satu-satu dan pada.",
            "Untuk f(x) = 2x + 3, inversnya adalah (x - 3)/2 yang diperoleh dengan menukar peran x dan y.",
            "Grafik fungsi dan inversnya selalu simetris terhadap garis y = x.",
            "Konversi suhu dari Celsius ke Fahrenheit dan sebaliknya merupakan contoh nyata pasangan fungsi "
            "dan invers.",
        ),
    ),
    _Topic(
        "Lingkaran",
        ("jari-jari", "garis singgung", "juring"),
        (
            "Lingkaran adalah himpunan titik pada bidang yang berjarak sama terhadap satu titik pusat.",
            "Jarak dari titik pusat ke titik pada lingkaran disebut jari-jari, sedangkan dua kali jari-jari "
            "disebut diameter.",
            "Persamaan lingkaran berpusat di (a, b) dengan jari-jari r adalah (x - a)^2 + (y - b)^2 = r^2.",
            "Garis singgung lingkaran selalu tegak lurus terhadap jari-jari di titik singgungnya.",
            "Sudut pusat besarnya dua kali sudut keliling yang menghadap busur yang sama.",
            "Luas juring sebanding dengan besar sudut pusatnya, yaitu sudut dibagi 360 derajat dikali luas lingkaran.",
            "Keliling lingkaran dihitung dengan rumus 2 pi r, dan nilai pi kira-kira 3,14 atau 22/7.",
            "Roda sepeda, jam dinding, dan lintasan atletik adalah benda sehari-hari yang memanfaatkan sifat "
            "lingkaran.",
        ),
    ),
    _Topic(
        "Statistika",
        ("ukuran pemusatan", "ukuran penyebaran", "histogram"),
        (
            "Statistika adalah ilmu tentang cara mengumpulkan, mengolah, menyajikan, dan menafsirkan data.",
            "Ukuran pemusatan data meliputi rata-rata atau mean, median, dan modus.",
            "Median adalah nilai tengah setelah data diurutkan, sehingga tidak mudah terpengaruh oleh nilai ekstrem.",
            "Modus adalah nilai yang paling sering muncul dan dapat digunakan untuk data kategorik seperti "
            "warna favorit.",
            "Ukuran penyebaran seperti jangkauan, simpangan rata-rata, dan simpangan baku menunjukkan "
            "seberapa jauh data menyebar.",
            "Data berkelompok disajikan dalam tabel distribusi frekuensi dengan panjang kelas yang sama.",
            "Histogram menggambarkan distribusi frekuensi dengan batang-batang yang saling berimpitan.",
            "Kuartil membagi data terurut menjadi empat bagian sama banyak dan dapat digambarkan dengan "
            "diagram kotak garis.",
        ),
    ),
    _Topic(
        "Peluang",
        ("ruang sampel", "kejadian", "frekuensi harapan"),
        (
            "Peluang menyatakan seberapa besar kemungkinan suatu kejadian terjadi, dengan nilai antara nol dan satu.",
            "Ruang sampel adalah himpunan semua hasil yang mungkin dari suatu percobaan.",
            "Pada pelemparan sebuah dadu, ruang sampelnya adalah {1, 2, 3, 4, 5, 6} sehingga banyaknya enam.",
            "Peluang kejadian A dihitung sebagai banyak anggota A dibagi banyak anggota ruang sampel.",
            "Kejadian yang pasti terjadi memiliki peluang satu, sedangkan kejadian yang mustahil memiliki peluang nol.",
            "Frekuensi harapan adalah hasil kali peluang suatu kejadian dengan banyaknya percobaan.",
            "Jika dua kejadian saling bebas, peluang keduanya terjadi bersamaan sama dengan hasil kali "
            "peluang masing-masing.",
            "Permutasi dan kombinasi membantu menghitung banyaknya anggota ruang sampel yang besar.",
        ),
    ),
)

_BIOLOGI_10 = (
    _Topic(
        "Keanekaragaman Hayati",
        ("tingkat gen", "tingkat jenis", "endemik"),
        (
            "Keanekaragaman hayati adalah variasi makhluk hidup yang dapat diamati pada tingkat gen, jenis, "
            "dan ekosistem.",
            "Keanekaragaman tingkat gen tampak pada perbedaan warna bunga mawar atau rasa berbagai varietas mangga.",
            "Keanekaragaman tingkat jenis terlihat pada kerabat dekat seperti harimau, kucing, dan singa "
            "yang tergolong satu famili.",
            "Indonesia termasuk negara megabiodiversitas karena memiliki hutan hujan tropis, terumbu karang, "
            "dan ribuan pulau.",
            "Garis Wallace dan garis Weber memisahkan wilayah fauna Asiatis, peralihan, dan Australis di Indonesia.",
            "Hewan endemik seperti komodo, anoa, dan burung cenderawasih hanya ditemukan di wilayah tertentu.",
            "Pelestarian dilakukan secara in situ di taman nasional maupun ex situ di kebun raya dan kebun binatang.",
            "Perburuan liar dan alih fungsi hutan menjadi ancaman terbesar bagi keanekaragaman hayati Indonesia.",
        ),
    ),
    _Topic(
        "Virus dan Peranannya",
        ("kapsid", "replikasi", "vaksin"),
        (
            "Virus berukuran sangat kecil, sekitar 20 sampai 300 nanometer, sehingga hanya dapat diamati "
            "dengan mikroskop elektron.",
            "Tubuh virus terdiri atas materi genetik berupa DNA atau RNA yang dibungkus selubung protein "
            "bernama kapsid.",
            "Virus tidak dapat berkembang biak di luar sel inang sehingga sering disebut berada di antara "
            "benda hidup dan tak hidup.",
            "Replikasi virus secara litik meliputi tahap adsorpsi, injeksi, sintesis, perakitan, dan lisis.",
            "Pada daur lisogenik, materi genetik virus bergabung dengan DNA inang dan ikut tereplikasi tanpa "
            "merusak sel.",
            "Penyakit yang disebabkan virus antara lain influenza, campak, demam berdarah, dan COVID-19.",
            "Vaksin berisi virus yang dilemahkan atau bagiannya sehingga tubuh membentuk kekebalan tanpa "
            "harus sakit parah.",
            "Di bidang bioteknologi, virus dimanfaatkan sebagai vektor untuk memasukkan gen ke dalam sel.",
        ),
    ),
    _Topic(
        "Ekologi dan Ekosistem",
        ("rantai makanan", "produsen", "siklus biogeokimia"),
        (
            "Ekologi mempelajari hubungan timbal balik antara makhluk hidup dan lingkungannya.",
            "Ekosistem tersusun atas komponen biotik seperti tumbuhan dan hewan serta komponen abiotik "
            "seperti air, tanah, dan cahaya.",
            "Produsen adalah organisme yang mampu membuat makanan sendiri, misalnya tumbuhan hijau dan fitoplankton.",
            "Rantai makanan menggambarkan perpindahan energi dari produsen ke konsumen tingkat pertama, "
            "kedua, dan seterusnya.",
            "Beberapa rantai makanan yang saling berhubungan membentuk jaring-jaring makanan.",
            "Hanya sekitar sepuluh persen energi yang berpindah ke tingkat trofik berikutnya, sisanya hilang "
            "sebagai panas.",
            "Dekomposer seperti bakteri dan jamur menguraikan sisa organisme menjadi zat hara yang kembali ke tanah.",
            "Siklus biogeokimia seperti siklus karbon, nitrogen, dan air menjaga ketersediaan unsur penting di alam.",
        ),
    ),
    _Topic(
        "Perubahan Lingkungan",
        ("pencemaran", "efek rumah kaca", "daur ulang"),
        (
            "Perubahan lingkungan dapat terjadi secara alami, misalnya letusan gunung api, maupun akibat "
            "kegiatan manusia.",
            "Pencemaran air terjadi ketika limbah rumah tangga, industri, atau pertanian masuk ke sungai dan laut.",
            "Kadar oksigen terlarut yang rendah menandakan air tercemar dan membahayakan kehidupan ikan.",
            "Pembakaran bahan bakar fosil meningkatkan kadar karbon dioksida yang memperkuat efek rumah kaca.",
            "Pemanasan global menyebabkan mencairnya es di kutub, naiknya permukaan laut, dan perubahan pola hujan.",
            "Sampah plastik membutuhkan ratusan tahun untuk terurai dan dapat berubah menjadi mikroplastik di laut.",
            "Prinsip kurangi, gunakan kembali, dan daur ulang membantu menekan jumlah sampah yang dibuang.",
            "Penanaman mangrove di pesisir melindungi pantai dari abrasi sekaligus menjadi tempat berkembang "
            "biak ikan.",
        ),
    ),
)

_BIOLOGI_11 = (
    _Topic(
        "Sel sebagai Unit Kehidupan",
        ("membran sel", "organel", "mitokondria"),
        (
            "Sel adalah unit struktural dan fungsional terkecil penyusun tubuh makhluk hidup.",
            "Teori sel menyatakan bahwa semua makhluk hidup tersusun atas sel dan setiap sel berasal dari "
            "sel sebelumnya.",
            "Sel prokariotik seperti bakteri tidak memiliki membran inti, sedangkan sel eukariotik memiliki "
            "inti sel yang jelas.",
            "Membran sel bersifat selektif permeabel sehingga hanya zat tertentu yang dapat keluar masuk sel.",
            "Mitokondria merupakan organel tempat respirasi sel yang menghasilkan energi dalam bentuk ATP.",
            "Ribosom menyintesis protein, sedangkan badan Golgi mengemas dan mengirimkan protein ke tujuan.",
            "Sel tumbuhan memiliki dinding sel, kloroplas, dan vakuola besar yang tidak dijumpai pada sel hewan.",
            "Transpor zat melintasi membran dapat terjadi secara pasif melalui difusi dan osmosis atau "
            "secara aktif dengan energi.",
        ),
    ),
    _Topic(
        "Fotosintesis dan Metabolisme",
        ("kloroplas", "reaksi terang", "siklus Calvin"),
        (
            "Metabolisme adalah seluruh reaksi kimia di dalam sel, yang terdiri atas anabolisme dan katabolisme.",
            "Enzim berperan sebagai biokatalisator yang mempercepat reaksi tanpa ikut bereaksi.",
            "Proses fotosin|tesis berlangsung di kloroplas dan mengubah energi cahaya menjadi energi kimia.",
            "Persamaan umumnya adalah 6CO2 + 6H2O menghasilkan C6H12O6 + 6O2 dengan bantuan cahaya dan klorofil.",
            "Reaksi terang terjadi di membran tilakoid dan menghasilkan ATP, NADPH, serta oksigen dari pemecahan air.",
            "Siklus Calvin berlangsung di stroma dan menggunakan ATP serta NADPH untuk mengikat karbon "
            "dioksida menjadi glukosa.",
            "Intensitas cahaya, kadar karbon dioksida, suhu, dan ketersediaan air memengaruhi laju fotosintesis.",
            "Percobaan Ingenhousz dengan tanaman Hydrilla membuktikan bahwa fotosintesis menghasilkan "
            "gelembung oksigen.",
        ),
    ),
    _Topic(
        "Sistem Pencernaan Manusia",
        ("enzim pencernaan", "usus halus", "gizi seimbang"),
        (
            "Sistem pencernaan mengubah makanan menjadi zat sederhana yang dapat diserap dan digunakan oleh tubuh.",
            "Pencernaan mekanik terjadi ketika gigi mengunyah makanan, sedangkan pencernaan kimiawi dibantu "
            "oleh enzim.",
            "Enzim amilase di dalam air liur mulai memecah amilum menjadi maltosa sejak makanan berada di mulut.",
            "Lambung menghasilkan asam klorida dan enzim pepsin yang memecah protein menjadi pepton.",
            "Usus halus terdiri atas duodenum, jejunum, dan ileum, serta dilapisi vili untuk memperluas "
            "permukaan penyerapan.",
            "Hati menghasilkan empedu yang mengemulsikan lemak, sedangkan pankreas menghasilkan enzim "
            "lipase, tripsin, dan amilase.",
            "Usus besar menyerap air dan garam mineral, lalu sisa makanan dikeluarkan melalui anus.",
            "Pola makan dengan gizi seimbang dan cukup serat membantu mencegah sembelit, maag, dan obesitas.",
        ),
    ),
    _Topic(
        "Sistem Peredaran Darah",
        ("jantung", "pembuluh darah", "tekanan darah"),
        (
            "Sistem peredaran darah mengangkut oksigen, sari makanan, hormon, dan sisa metabolisme ke seluruh tubuh.",
            "Darah terdiri atas plasma darah, sel darah merah, sel darah putih, dan keping darah.",
            "Sel darah merah mengandung hemoglobin yang mengikat oksigen di paru-paru dan melepasnya di jaringan.",
            "Jantung manusia memiliki empat ruang, yaitu serambi kanan, serambi kiri, bilik kanan, dan bilik kiri.",
            "Manusia memiliki peredaran darah ganda, yaitu peredaran darah kecil melalui paru-paru dan "
            "peredaran darah besar ke seluruh tubuh.",
            "Arteri membawa darah keluar dari jantung, vena membawa darah kembali ke jantung, dan kapiler "
            "menghubungkan keduanya.",
            "Tekanan darah normal orang dewasa sekitar 120/80 mmHg dan diukur dengan tensimeter.",
            "Olahraga teratur serta mengurangi garam dan lemak jenuh menjaga kesehatan jantung dan pembuluh darah.",
        ),
    ),
)

_BOOKS: tuple[_Book, ...] = (
    _Book(
        "informatika",
        "kelas_10",
        "buku_siswa_informatika_kelas_10.pdf",
        "Buku Siswa",
        "Informatika",
        "Kelas X",
        _INFORMATIKA_10,
        extra="table",
    ),
    _Book(
        "informatika",
        "kelas_10",
        "modul_ajar_informatika_kelas_10.pdf",
        "Modul Ajar",
        "Informatika",
        "Kelas X",
        _INFORMATIKA_10_MODUL,
    ),
    _Book(
        "informatika",
        "kelas_11",
        "buku_siswa_informatika_kelas_11.pdf",
        "Buku Siswa",
        "Informatika",
        "Kelas XI",
        _INFORMATIKA_11,
    ),
    _Book(
        "matematika",
        "kelas_10",
        "buku_siswa_matematika_kelas_10.pdf",
        "Buku Siswa",
        "Matematika",
        "Kelas X",
        _MATEMATIKA_10,
        extra="scan",
    ),
    _Book(
        "matematika",
        "kelas_11",
        "buku_siswa_matematika_kelas_11.pdf",
        "Buku Siswa",
        "Matematika",
        "Kelas XI",
        _MATEMATIKA_11,
    ),
    _Book(
        "biologi",
        "kelas_10",
        "buku_siswa_biologi_kelas_10.pdf",
        "Buku Siswa",
        "Biologi",
        "Kelas X",
        _BIOLOGI_10,
    ),
    _Book(
        "biologi",
        "kelas_11",
        "buku_siswa_biologi_kelas_11.pdf",
        "Buku Siswa",
        "Biologi",
        "Kelas XI",
        _BIOLOGI_11,
    ),
)

SAMPLE_PARTITIONS: tuple[tuple[str, str], ...] = tuple(dict.fromkeys((b.subject, b.grade) for b in _BOOKS))
BROKEN_SAMPLE: tuple[str, str, str] = ("biologi", "kelas_11", "rusak.pdf")

_INTRO = (
    "Pada bab ini kamu akan mempelajari {title} mulai dari konsep dasar hingga penerapannya. Istilah penting "
    "yang perlu kamu kuasai adalah {t0}, {t1}, dan {t2}.",
    "Setelah mempelajari bab {title}, kamu diharapkan mampu menjelaskan {t0}, memberi contoh {t1}, serta "
    "menghubungkan {t2} dengan kehidupan sehari-hari.",
    "Bab ini membahas {title}. Perhatikan baik-baik pengertian {t0} dan {t1}, karena keduanya menjadi dasar "
    "untuk memahami {t2} pada bagian berikutnya.",
)
_ACTIVITY = (
    "Bentuklah kelompok yang terdiri atas tiga sampai empat orang. Setiap kelompok memilih satu contoh {t0} "
    "dari kehidupan sehari-hari, lalu menjelaskan hubungannya dengan {t1}. Tuliskan hasil diskusi dalam "
    "bentuk poster sederhana dan presentasikan di depan kelas selama lima menit.",
    "Kerjakan secara mandiri: buatlah peta konsep yang menghubungkan {t0}, {t1}, dan {t2}. Tambahkan paling "
    "sedikit satu contoh untuk setiap istilah, kemudian bandingkan peta konsepmu dengan milik teman sebangku "
    "dan catat perbedaannya.",
    "Lakukan pengamatan singkat di lingkungan sekolah atau rumah yang berkaitan dengan {t1}. Catat temuanmu "
    "dalam tabel pengamatan, lalu jawab pertanyaan berikut: bagaimana {t0} memengaruhi hasil pengamatan "
    "tersebut, dan apa peran {t2} di dalamnya?",
    "Susunlah tiga pertanyaan tentang {t2} yang belum kamu pahami. Tukarkan pertanyaanmu dengan kelompok "
    "lain, cari jawabannya dari buku ini dan sumber tepercaya, lalu tuliskan jawaban dengan "
    "bahasamu sendiri.",
)
_SUMMARY = (
    "Materi {title} mencakup {t0}, {t1}, dan {t2}. Ketiga istilah tersebut saling berkaitan dan akan "
    "digunakan kembali pada bab-bab berikutnya, sehingga pastikan kamu memahaminya sebelum melanjutkan.",
    "Refleksi: bagian mana dari materi {title} yang paling mudah kamu pahami, dan bagian mana yang masih "
    "membingungkan? Ceritakan kepada guru bagaimana kamu memahami {t0} serta contoh {t2} yang kamu temukan.",
    "Uji pemahaman: jelaskan dengan kalimatmu sendiri apa yang dimaksud dengan {t0} dan {t1}, kemudian "
    "berikan dua contoh penerapan {t2}. Bandingkan jawabanmu dengan rangkuman bab ini.",
)

_PRACTICE = (
    "Ayo berlatih: (1) Apa yang dimaksud dengan {t0}? (2) Sebutkan dua perbedaan antara {t1} dan {t2}. "
    "(3) Mengapa materi {title} penting dipelajari oleh siswa SMA? Jawablah di buku catatanmu.",
    "Tahukah kamu? Banyak ilmuwan dan praktisi di Indonesia menggunakan konsep {t1} dalam pekerjaannya "
    "setiap hari. Carilah satu artikel tepercaya tentang {t0}, lalu tuliskan ringkasannya dalam "
    "lima kalimat.",
    "Soal tantangan: rancanglah satu contoh persoalan sehari-hari yang dapat diselesaikan dengan memahami "
    "{t2}. Tukarkan soalmu dengan teman dan periksa apakah jawabannya sudah menggunakan {t0} dengan tepat.",
)

_TABLE_HEAD = ("Nama Algoritma", "Kompleksitas", "Contoh Penggunaan")
_TABLE_ROWS = (
    ("Linear Search", "O(n)", "Mencari nama di daftar hadir"),
    ("Binary Search", "O(log n)", "Mencari kata di kamus terurut"),
    ("Bubble Sort", "O(n²)", "Mengurutkan nilai ulangan"),
    ("Insertion Sort", "O(n²)", "Menyusun kartu di tangan"),
    ("Merge Sort", "O(n log n)", "Mengurutkan data siswa sekolah"),
    ("Quick Sort", "O(n log n)", "Pengurutan pada basis data"),
    ("Breadth First Search", "O(V + E)", "Rute terpendek di peta jalan"),
)


# --- layout helpers ---------------------------------------------------------------------------------------
def _wrap(text: str, fontname: str, size: float, width: float) -> list[str]:
    """Greedy word wrap; a ``|`` inside a word forces a hyphenated line break at that point."""

    def fits(s: str) -> bool:
        return pymupdf.get_text_length(s, fontname=fontname, fontsize=size) <= width

    lines: list[str] = []
    line = ""
    for word in text.split():
        head, mark, tail = word.partition(_HYPHEN_MARK)
        if mark:
            # Break exactly here so the extracted text contains "head-\ntail".
            candidate = f"{line} {head}-" if line else f"{head}-"
            if not fits(candidate):
                lines.append(line)
                candidate = f"{head}-"
            lines.append(candidate)
            line = tail
            continue
        candidate = f"{line} {word}" if line else word
        if fits(candidate) or not line:
            line = candidate
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines


class _PageWriter:
    """Places headings and paragraphs top to bottom and fails loudly instead of overflowing the page."""

    def __init__(self, page: pymupdf.Page) -> None:
        self.page = page
        self.y = _BODY_TOP

    def _line(self, text: str, fontname: str, size: float, leading: float) -> None:
        self.y += leading
        if self.y > _BODY_BOTTOM:
            raise RuntimeError(f"sample text overflows page {self.page.number + 1}")
        self.page.insert_text((_MARGIN_X, self.y), text, fontname=fontname, fontsize=size)

    def heading(self, text: str, size: float = 11.5, space_before: float = 8.0) -> None:
        self.y += space_before
        for line in _wrap(text, _BOLD_FONT, size, _TEXT_W):
            self._line(line, _BOLD_FONT, size, size * 1.35)
        self.y += 2.0

    def paragraph(self, text: str) -> None:
        for line in _wrap(text, _BODY_FONT, _BODY_SIZE, _TEXT_W):
            self._line(line, _BODY_FONT, _BODY_SIZE, _BODY_LEADING)
        self.y += 6.0


def _new_page(doc: pymupdf.Document, book: _Book) -> pymupdf.Page:
    """New A4 page with the running header a cleaning step should strip."""
    page = doc.new_page(width=_PAGE_W, height=_PAGE_H)
    page.insert_text((_MARGIN_X, 40), book.header, fontname=_BODY_FONT, fontsize=9, color=_GREY)
    page.draw_line((_MARGIN_X, 47), (_PAGE_W - _MARGIN_X, 47), color=_GREY, width=0.5)
    return page


def _add_footer(page: pymupdf.Page) -> None:
    """The "Halaman N" footer, drawn last so it also comes last in the extracted text."""
    footer = f"Halaman {page.number + 1}"
    footer_w = pymupdf.get_text_length(footer, fontname=_BODY_FONT, fontsize=9)
    page.insert_text(((_PAGE_W - footer_w) / 2, 815), footer, fontname=_BODY_FONT, fontsize=9, color=_GREY)


def _fill(template: str, topic: _Topic) -> str:
    t0, t1, t2 = topic.terms
    return template.format(title=topic.title.lower(), t0=t0, t1=t1, t2=t2)


def _topic_page(doc: pymupdf.Document, book: _Book, chapter: int, topic: _Topic, variant: int) -> None:
    writer = _PageWriter(_new_page(doc, book))
    s = topic.sentences
    writer.heading(f"Bab {chapter} {topic.title}", size=15, space_before=0)
    writer.paragraph(_fill(_INTRO[variant % len(_INTRO)], topic))
    writer.heading("A. Pengertian dan Konsep Dasar")
    writer.paragraph(" ".join(s[:3]))
    writer.heading("B. Pembahasan")
    writer.paragraph(" ".join(s[3:6]))
    writer.paragraph(" ".join(s[6:]))
    writer.heading(f"C. Aktivitas {chapter}.1")
    writer.paragraph(_fill(_ACTIVITY[variant % len(_ACTIVITY)], topic))
    writer.paragraph(_fill(_PRACTICE[variant % len(_PRACTICE)], topic))
    writer.heading("Rangkuman dan Refleksi")
    writer.paragraph(_fill(_SUMMARY[variant % len(_SUMMARY)], topic))
    _add_footer(writer.page)


def _table_page(doc: pymupdf.Document, book: _Book, chapter: int) -> None:
    """A ruled table with extractable cell text, for table detection/extraction."""
    page = _new_page(doc, book)
    writer = _PageWriter(page)
    writer.heading(f"Bab {chapter} Ringkasan Algoritma Pencarian dan Pengurutan", size=15, space_before=0)
    writer.paragraph(
        "Tabel 5.1 merangkum algoritma yang telah dibahas beserta kompleksitas waktunya dalam notasi Big-O. "
        "Notasi ini menggambarkan bagaimana waktu eksekusi bertambah ketika banyaknya data n membesar, "
        "sehingga kita dapat membandingkan efisiensi algoritma tanpa harus menjalankannya di komputer."
    )
    writer.heading("Tabel 5.1 Perbandingan Kompleksitas Algoritma", size=10.5)
    col_w = (150.0, 100.0, _TEXT_W - 250.0)
    # 11.5 pt keeps the space glyphs wider than find_tables()' default 3 pt x-tolerance.
    row_h, cell_size = 22.0, 11.5
    top = writer.y + 6
    for r, row in enumerate((_TABLE_HEAD, *_TABLE_ROWS)):
        x = _MARGIN_X
        y0 = top + r * row_h
        for c, cell in enumerate(row):
            rect = pymupdf.Rect(x, y0, x + col_w[c], y0 + row_h)
            fill = (0.85, 0.9, 0.97) if r == 0 else None
            page.draw_rect(rect, color=(0, 0, 0), fill=fill, width=0.7)
            font = _BOLD_FONT if r == 0 else _BODY_FONT
            page.insert_text((x + 5, y0 + 15.5), cell, fontname=font, fontsize=cell_size)
            x += col_w[c]
    writer.y = top + (len(_TABLE_ROWS) + 1) * row_h + 10
    writer.paragraph(
        "Dari tabel tersebut terlihat bahwa Binary Search jauh lebih cepat daripada Linear Search, tetapi "
        "hanya dapat digunakan apabila data sudah terurut. Untuk data berukuran besar, Merge Sort dan Quick "
        "Sort lebih disarankan daripada Bubble Sort karena pertumbuhan waktunya jauh lebih lambat. Breadth "
        "First Search bekerja pada graf dengan V simpul dan E sisi, misalnya peta jalan antarkota."
    )
    writer.paragraph(
        "Latihan: urutkan data 34, 7, 23, 32, 5, 62 menggunakan Bubble Sort dan catat banyaknya pertukaran "
        "yang terjadi. Kemudian ulangi dengan Insertion Sort dan bandingkan hasilnya. Algoritma manakah yang "
        "melakukan lebih sedikit langkah untuk data ini, dan mengapa demikian?"
    )
    writer.paragraph(
        "Catatan: kompleksitas pada tabel adalah kasus rata-rata. Quick Sort dapat memburuk menjadi O(n²) "
        "apabila pivot selalu dipilih dari elemen terkecil atau terbesar."
    )
    _add_footer(page)


def _scan_page(doc: pymupdf.Document) -> None:
    """An image-only page (no text layer), like a scanned figure that needs OCR."""
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 600, 800), False)
    pix.clear_with(246)  # off-white paper
    # Grey bars imitate scanned lines of print, a framed box imitates a figure.
    for i in range(10):
        y = 60 + i * 26
        pix.set_rect(pymupdf.IRect(60, y, 540 - (i * 37) % 120, y + 10), (90, 90, 90))
    pix.set_rect(pymupdf.IRect(100, 360, 500, 660), (40, 40, 40))
    pix.set_rect(pymupdf.IRect(104, 364, 496, 656), (235, 240, 250))
    for x in range(110, 490, 4):  # a parabola y = a(x - h)^2 + k drawn as dots
        y = int(380 + (x - 300) ** 2 / 140)
        if y < 650:
            pix.set_rect(pymupdf.IRect(x, y, x + 4, y + 4), (200, 30, 30))
    for i in range(6):
        y = 690 + i * 18
        pix.set_rect(pymupdf.IRect(60, y, 540 - (i * 53) % 150, y + 8), (90, 90, 90))
    page = doc.new_page(width=_PAGE_W, height=_PAGE_H)
    page.insert_image(page.rect, pixmap=pix)


def _build_pdf(book: _Book) -> bytes:
    doc = pymupdf.open()
    try:
        offset = len(book.subject) + len(book.grade) + len(book.filename)  # varies templates across books
        for i, topic in enumerate(book.topics):
            _topic_page(doc, book, i + 1, topic, offset + i)
        if book.extra == "table":
            _table_page(doc, book, len(book.topics) + 1)
        elif book.extra == "scan":
            _scan_page(doc)
        doc.set_metadata(
            {
                "title": f"{book.kind} {book.subject_label} {book.grade_label}",
                "author": "Nexus Assets (data contoh)",
                "subject": f"Contoh korpus {book.subject}/{book.grade}",
                "keywords": "kurikulum merdeka, contoh, sintetis",
                # The PDFs' bytes (and so every raw sha256) depend on this string: it keeps its pre-move name.
                "creator": "nexus_assets.lib.sample_data",  # lib_moves: keep
                "producer": "PyMuPDF",
                "creationDate": _PDF_DATE,
                "modDate": _PDF_DATE,
            }
        )
        return doc.tobytes(garbage=3, deflate=True, no_new_id=True)
    finally:
        doc.close()


def _broken_bytes(valid_pdf: bytes) -> bytes:
    """A truncated download: a real PDF cut off inside its first page object, before any xref/trailer.

    Cutting later (after the page tree) would let MuPDF's repair recover empty pages; cutting here makes
    ``pymupdf.open()`` raise.
    """
    cut = valid_pdf.find(b"/Contents")
    return valid_pdf[: cut + 24 if cut != -1 else 300]


def generate_sample_corpus(raw_root: Path) -> list[Path]:
    """Write the sample PDFs under raw_root/<subject>/<grade>/ and return their paths (sorted).

    Only this corpus' own files are (over)written; anything else under ``raw_root`` is left alone.
    """
    raw_root = Path(raw_root)
    written: list[Path] = []
    by_partition: dict[tuple[str, str], bytes] = {}
    for book in _BOOKS:
        data = _build_pdf(book)
        by_partition.setdefault((book.subject, book.grade), data)
        path = raw_root / book.subject / book.grade / book.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    subject, grade, filename = BROKEN_SAMPLE
    broken = raw_root / subject / grade / filename
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_bytes(_broken_bytes(by_partition[(subject, grade)]))
    written.append(broken)
    return sorted(written)
